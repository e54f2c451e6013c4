//! The device's kernels, copies and memsets from CUPTI's activity API (feature `cupti`).
//!
//! CUPTI fills buffers this module hands it and returns them full (from its own thread, or
//! at the flush in [`Recorder::finish`]); each record is copied into a compact [`Activity`]
//! on CUPTI's clock, and mapped onto the host clock of the sampler at the end through two
//! readings of both clocks (at start and at finish). Recording is switched off (the kinds
//! disabled) for the iterations timed without attribution.
//!
//! Record layouts are those of CUPTI 13.0's `cupti_activity.h` (the GPU machines' and the
//! build toolchain's): `CUpti_ActivityKernel10` for `CONCURRENT_KERNEL`, `Memcpy6`, `Memset4`.

use super::gpu::{ActKind, Activity, GpuTrace};
use anyhow::{anyhow, bail, Result};
use cudarc::cupti::{result as cr, sys};
use std::alloc::{alloc, dealloc, Layout};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

const BUF_SIZE: usize = 8 << 20;
const BUF_ALIGN: usize = 8;

const KINDS: [sys::CUpti_ActivityKind; 3] = [
    sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
    sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY,
    sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMSET,
];

#[derive(Default)]
struct Store {
    acts: Vec<Activity>,
    names: Vec<String>,
    index: HashMap<String, u32>,
    dropped: u64,
}

/// The active recorder's records (None: no recorder).
static STORE: Mutex<Option<Store>> = Mutex::new(None);

fn layout() -> Layout {
    Layout::from_size_align(BUF_SIZE, BUF_ALIGN).expect("a valid layout")
}

unsafe extern "C" fn requested(buffer: *mut *mut u8, size: *mut usize, max_records: *mut usize) {
    // SAFETY: CUPTI passes valid out-pointers; the buffer is freed in `completed`.
    unsafe {
        let p = alloc(layout());
        *buffer = p;
        *size = if p.is_null() { 0 } else { BUF_SIZE };
        *max_records = 0;
    }
}

unsafe extern "C" fn completed(
    ctx: cudarc::driver::sys::CUcontext,
    stream: u32,
    buffer: *mut u8,
    _size: usize,
    valid: usize,
) {
    if buffer.is_null() {
        return;
    }
    if let Ok(mut g) = STORE.lock() {
        if let Some(st) = g.as_mut() {
            // SAFETY: CUPTI hands back a buffer of ours with `valid` bytes of records.
            unsafe { parse(st, buffer, valid) };
            let mut n = 0usize;
            // SAFETY: the context and stream are the ones CUPTI named for this buffer.
            if unsafe { cr::activity::get_num_dropped_records(ctx, stream, &mut n) }.is_ok() {
                st.dropped += n as u64;
            }
        }
    }
    // SAFETY: allocated in `requested` with the same layout.
    unsafe { dealloc(buffer, layout()) };
}

/// Copies the records of one buffer out.
///
/// SAFETY: `buffer` holds `valid` bytes of CUPTI activity records.
unsafe fn parse(st: &mut Store, buffer: *mut u8, valid: usize) {
    let mut rec: *mut sys::CUpti_Activity = std::ptr::null_mut();
    // SAFETY (the loop): CUPTI walks its own records; each is read unaligned by value.
    while unsafe { cr::activity::get_next_record(buffer, valid, &mut rec) }.is_ok() {
        let kind = unsafe { (rec as *const u32).read_unaligned() };
        match kind {
            // CONCURRENT_KERNEL (10), KERNEL (3)
            10 | 3 => {
                let k = unsafe { (rec as *const sys::CUpti_ActivityKernel10).read_unaligned() };
                let name = if k.name.is_null() {
                    "?".to_string()
                } else {
                    unsafe { std::ffi::CStr::from_ptr(k.name) }
                        .to_string_lossy()
                        .into_owned()
                };
                let next = st.names.len() as u32;
                let id = *st.index.entry(name.clone()).or_insert(next);
                if id == next {
                    st.names.push(name);
                }
                st.acts.push(Activity {
                    kind: ActKind::Kernel,
                    name: id,
                    start_ns: k.start,
                    end_ns: k.end,
                    stream: k.streamId,
                    bytes: 0,
                });
            }
            // MEMCPY
            1 => {
                let m = unsafe { (rec as *const sys::CUpti_ActivityMemcpy6).read_unaligned() };
                let kind = match m.copyKind {
                    1 => ActKind::CopyHtoD,
                    2 => ActKind::CopyDtoH,
                    8 => ActKind::CopyDtoD,
                    10 => ActKind::CopyPeer,
                    _ => ActKind::CopyHtoD,
                };
                st.acts.push(Activity {
                    kind,
                    name: u32::MAX,
                    start_ns: m.start,
                    end_ns: m.end,
                    stream: m.streamId,
                    bytes: m.bytes,
                });
            }
            // MEMSET
            2 => {
                let m = unsafe { (rec as *const sys::CUpti_ActivityMemset4).read_unaligned() };
                st.acts.push(Activity {
                    kind: ActKind::Memset,
                    name: u32::MAX,
                    start_ns: m.start,
                    end_ns: m.end,
                    stream: m.streamId,
                    bytes: m.bytes,
                });
            }
            _ => {}
        }
    }
}

fn cupti(what: &str, r: std::result::Result<(), cr::CuptiError>) -> Result<()> {
    r.map_err(|e| {
        let msg = e
            .error_string()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|_| format!("{:?}", e.0));
        anyhow!("CUPTI {what}: {msg}")
    })
}

fn now() -> Result<(Instant, u64)> {
    let mut ts = 0u64;
    let h = Instant::now();
    // SAFETY: a valid out-pointer.
    cupti("cuptiGetTimestamp", unsafe { cr::get_timestamp(&mut ts) })?;
    Ok((h, ts))
}

/// Records the device's activity from `start` to `finish` (one at a time per process).
///
/// CUPTI stays attached from `start` to `finish` (`pause` only disables its activity kinds)
/// and `finish` detaches it (`cuptiFinalize`), so that whatever the process times after
/// the pass (the next case's Criterion samples) runs without it. Measured on an H200
/// (2026-12-02, docs/findings.md): attached with its kinds disabled it still slowed a
/// launch-bound decode by 6–11 %; detaching between iterations instead made both sides
/// slower and dropped records at concurrency 32, so the pass keeps it attached.
pub struct Recorder {
    first: (Instant, u64),
}

impl Recorder {
    pub fn start() -> Result<Recorder> {
        {
            let mut g = STORE.lock().map_err(|_| anyhow!("CUPTI store poisoned"))?;
            if g.is_some() {
                bail!("one CUPTI recorder at a time");
            }
            *g = Some(Store::default());
        }
        let r = Self::begin();
        if r.is_err() {
            if let Ok(mut g) = STORE.lock() {
                *g = None;
            }
        }
        r
    }

    fn begin() -> Result<Recorder> {
        // Every recorder registers the callbacks afresh: `finish` detaches CUPTI.
        cupti(
            "cuptiActivityRegisterCallbacks",
            cr::activity::register_callbacks(Some(requested), Some(completed)),
        )?;
        let r = Recorder { first: now()? };
        r.resume()?;
        Ok(r)
    }

    pub fn pause(&self) -> Result<()> {
        for k in KINDS {
            cupti("cuptiActivityDisable", cr::activity::disable(k))?;
        }
        Ok(())
    }

    pub fn resume(&self) -> Result<()> {
        for k in KINDS {
            cupti("cuptiActivityEnable", cr::activity::enable(k))?;
        }
        Ok(())
    }

    /// Flushes CUPTI's buffers and takes the records.
    pub fn finish(self) -> Result<Recorded> {
        // CUPTI_ACTIVITY_FLAG_FLUSH_FORCED
        let flushed = cupti("cuptiActivityFlushAll", cr::activity::flush_all(1));
        let paused = self.pause();
        let last = now()?;
        let store = STORE
            .lock()
            .map_err(|_| anyhow!("CUPTI store poisoned"))?
            .take()
            .unwrap_or_default();
        // Detach CUPTI, so that whatever the process times next (the next case's Criterion
        // samples) runs as it would without it.
        let detached = cupti("cuptiFinalize", cr::finalize());
        flushed?;
        paused?;
        detached?;
        Ok(Recorded {
            store,
            first: self.first,
            last,
        })
    }
}

impl Drop for Recorder {
    /// A recorder given up (an iteration failed) stops recording and lets the next start.
    fn drop(&mut self) {
        let _ = self.pause();
        if let Ok(mut g) = STORE.lock() {
            *g = None;
        }
    }
}

/// A finished recording, on CUPTI's clock.
pub struct Recorded {
    store: Store,
    first: (Instant, u64),
    last: (Instant, u64),
}

impl Recorded {
    /// The activities on the host clock, ns since `t0` (the sampler's start), sorted.
    pub fn on_clock(self, t0: Instant) -> GpuTrace {
        let host = |t: Instant| t.saturating_duration_since(t0).as_nanos() as f64;
        let (h0, c0) = (host(self.first.0), self.first.1 as f64);
        let (h1, c1) = (host(self.last.0), self.last.1 as f64);
        let slope = if c1 > c0 { (h1 - h0) / (c1 - c0) } else { 1.0 };
        let map = |c: u64| (h0 + (c as f64 - c0) * slope).max(0.0) as u64;
        let mut acts = self.store.acts;
        for a in &mut acts {
            a.start_ns = map(a.start_ns);
            a.end_ns = map(a.end_ns).max(a.start_ns);
        }
        acts.sort_by_key(|a| a.start_ns);
        GpuTrace {
            names: self.store.names,
            activities: acts,
            dropped: self.store.dropped,
            clock_skew_ns_per_s: (slope - 1.0) * 1e9,
        }
    }
}
