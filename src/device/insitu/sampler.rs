//! Wall-clock stack snapshots of every thread of this process (Linux).
//!
//! Why not a profiler crate: pprof-rs samples CPU time through one process-wide
//! `ITIMER_PROF`, so a thread that is blocked (the engine thread waiting while the rayon pool
//! runs its matmul) is never sampled and a pool thread's samples cannot be tied to the part
//! its caller is in; `perf` sees blocked stacks only through scheduler tracepoints, which
//! need privileges. This sampler takes, at every tick, a snapshot of *all* threads at once:
//!
//! - the sampler thread reads each thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID` of another
//!   thread, the kernel's `MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)`); a thread whose CPU
//!   time did not move since its last stack cannot have changed its stack, so the last one
//!   is reused and the thread is not disturbed;
//! - every other thread gets a real-time signal (`tgkill`); its handler unwinds its own stack
//!   with the `backtrace` crate (no allocation, raw addresses only) into a preallocated slot;
//! - the sampler waits for every handler, copies the slots out, and sleeps to the next tick.
//!
//! Addresses are symbolised after the session (`backtrace::resolve`, inlined frames included,
//! with file and line from the release profile's line tables), never in the timed region.

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Deepest stack kept per sample (frames beyond are dropped from the outer end).
pub const DEPTH: usize = 128;
/// Most threads signalled in one tick.
const SLOTS: usize = 512;
/// How long the sampler waits for the handlers of one tick.
const ACK_TIMEOUT: Duration = Duration::from_millis(50);

struct Slot {
    ready: AtomicBool,
    tid: AtomicI32,
    len: AtomicUsize,
    ips: [AtomicUsize; DEPTH],
}

struct Shared {
    slots: Box<[Slot]>,
    next: AtomicUsize,
    acks: AtomicUsize,
    dropped: AtomicUsize,
}

/// The session the signal handler writes into (null: none).
static ACTIVE: AtomicPtr<Shared> = AtomicPtr::new(std::ptr::null_mut());
/// One session at a time.
static SESSION: Mutex<()> = Mutex::new(());

fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The signal the sampler uses: a real-time one above those glibc keeps for itself.
fn signal() -> i32 {
    libc::SIGRTMIN() + 5
}

/// The interrupted instruction pointer, from the handler's context.
///
/// SAFETY: `ctx` is the `ucontext_t` the kernel passed to an `SA_SIGINFO` handler.
#[cfg(target_arch = "x86_64")]
unsafe fn interrupted_ip(ctx: *mut libc::c_void) -> usize {
    let uc = ctx as *const libc::ucontext_t;
    (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as usize
}
#[cfg(target_arch = "aarch64")]
unsafe fn interrupted_ip(ctx: *mut libc::c_void) -> usize {
    let uc = ctx as *const libc::ucontext_t;
    (*uc).uc_mcontext.pc as usize
}

extern "C" fn on_signal(_sig: i32, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let shared = ACTIVE.load(Ordering::Acquire);
    if shared.is_null() {
        return;
    }
    // SAFETY: `ACTIVE` is non-null only while its session keeps `Shared` alive, and the
    // session waits for every handler it signalled (or leaks `Shared`) before freeing it.
    let shared = unsafe { &*shared };
    let idx = shared.next.fetch_add(1, Ordering::AcqRel);
    if idx >= shared.slots.len() {
        shared.dropped.fetch_add(1, Ordering::Relaxed);
        shared.acks.fetch_add(1, Ordering::Release);
        return;
    }
    let slot = &shared.slots[idx];
    // SAFETY: as above.
    let ip = unsafe { interrupted_ip(ctx) };
    let mut n = 0usize;
    let mut found = false;
    // SAFETY: only this thread unwinds itself here; `trace_unsynchronized` takes no lock of
    // the backtrace crate and allocates nothing (glibc's `_dl_find_object` finds the frames).
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            let f = frame.ip() as usize;
            if !found {
                // Frames of the handler and the signal trampoline come first.
                found = f == ip;
                if !found {
                    return true;
                }
            }
            slot.ips[n].store(f, Ordering::Relaxed);
            n += 1;
            n < DEPTH
        });
    }
    if !found {
        // The unwinder did not pass the interrupted frame: keep its address alone.
        slot.ips[0].store(ip, Ordering::Relaxed);
        n = 1;
    }
    slot.len.store(n, Ordering::Relaxed);
    slot.tid.store(gettid(), Ordering::Relaxed);
    slot.ready.store(true, Ordering::Release);
    shared.acks.fetch_add(1, Ordering::Release);
}

fn install_handler() -> Result<()> {
    static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            // SAFETY: a zeroed sigaction with our handler, SA_SIGINFO and SA_RESTART (so an
            // interrupted read or write restarts instead of failing with EINTR).
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                if libc::sigaction(signal(), &sa, std::ptr::null_mut()) != 0 {
                    return Err(std::io::Error::last_os_error().to_string());
                }
            }
            Ok(())
        })
        .clone()
        .map_err(|e| anyhow!("installing the sampler's signal handler: {e}"))
}

/// CPU time of thread `tid` of this process, ns (None: the thread has ended).
fn thread_cpu_ns(tid: i32) -> Option<u64> {
    // The kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED): (~tid << 3) | 2 | 4.
    let clock = ((!tid) << 3) | 6;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id (or EINVAL for a gone thread) and a valid timespec.
    let rc = unsafe { libc::clock_gettime(clock as libc::clockid_t, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

fn thread_ids() -> Vec<i32> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn thread_name(tid: i32) -> String {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The run-queue delay of thread `tid` of this process so far, ns: the time it was runnable
/// but not running (the second field of `/proc/self/task/TID/schedstat`; None: not readable).
fn thread_wait_ns(files: &mut HashMap<i32, std::fs::File>, tid: i32) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    if let std::collections::hash_map::Entry::Vacant(e) = files.entry(tid) {
        e.insert(std::fs::File::open(format!("/proc/self/task/{tid}/schedstat")).ok()?);
    }
    let mut buf = [0u8; 96];
    // A seq_file read at offset 0 renders the figures afresh.
    let n = files.get(&tid)?.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One thread at one tick.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    pub tid: i32,
    /// The thread's CPU time since its previous sample, ns (0 on its first).
    pub cpu_ns: u64,
    /// How long the thread was runnable but waiting for a CPU since its previous sample, ns
    /// (its run-queue delay: preempted, or woken and not yet running; 0 on its first).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wait_ns: u64,
    /// Index into the trace's stacks.
    pub stack: u32,
}

/// One snapshot of all threads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tick {
    /// When the snapshot was taken, ns since the session started.
    pub at_ns: u64,
    /// The first tick after a pause: the time since the previous tick was not sampled, so
    /// this tick weighs one interval.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
    pub samples: Vec<Sample>,
}

/// What a session recorded: raw addresses, innermost first.
#[derive(Debug, Clone, Default)]
pub struct RawTrace {
    pub started: Option<Instant>,
    pub interval: Duration,
    pub ticks: Vec<Tick>,
    pub stacks: Vec<Vec<usize>>,
    pub thread_names: HashMap<i32, String>,
    /// Handler runs that found no free slot, and ticks whose handlers did not all answer.
    pub dropped: usize,
    pub late_ticks: usize,
}

/// A running sampler; [`Sampler::stop`] ends it and returns what it saw.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<RawTrace>>,
    _guard: std::sync::MutexGuard<'static, ()>,
}

impl Sampler {
    /// Starts sampling every thread of the process every `interval`.
    pub fn start(interval: Duration) -> Result<Sampler> {
        if !cfg!(target_os = "linux") {
            bail!("in-situ attribution samples threads through Linux's /proc and tgkill");
        }
        let guard = SESSION
            .try_lock()
            .map_err(|_| anyhow!("an in-situ sampler is already running in this process"))?;
        install_handler()?;
        let slots: Box<[Slot]> = (0..SLOTS)
            .map(|_| Slot {
                ready: AtomicBool::new(false),
                tid: AtomicI32::new(0),
                len: AtomicUsize::new(0),
                ips: std::array::from_fn(|_| AtomicUsize::new(0)),
            })
            .collect();
        let shared = Box::into_raw(Box::new(Shared {
            slots,
            next: AtomicUsize::new(0),
            acks: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        }));
        ACTIVE.store(shared, Ordering::Release);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let paused = Arc::new(AtomicBool::new(false));
        let paused2 = paused.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let shared_addr = shared as usize;
        let thread = std::thread::Builder::new()
            .name("insitu-sampler".into())
            .spawn(move || {
                // SAFETY: `shared` lives until this thread has ended (freed in `stop`).
                let shared = unsafe { &*(shared_addr as *const Shared) };
                let _ = ready_tx.send(());
                sample_loop(shared, interval, &stop2, &paused2)
            })?;
        let _ = ready_rx.recv();
        Ok(Sampler {
            stop,
            paused,
            thread: Some(thread),
            _guard: guard,
        })
    }

    /// Stops taking snapshots until [`Sampler::resume`] (the sampler thread only sleeps), so
    /// that runs without attribution can be interleaved with attributed ones.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::Release);
    }

    /// Stops sampling and returns the trace.
    pub fn stop(mut self) -> Result<RawTrace> {
        self.finish()
    }

    fn finish(&mut self) -> Result<RawTrace> {
        self.stop.store(true, Ordering::Release);
        let trace = self
            .thread
            .take()
            .ok_or_else(|| anyhow!("sampler already stopped"))?
            .join()
            .map_err(|_| anyhow!("the sampler thread panicked"))?;
        let shared = ACTIVE.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !shared.is_null() {
            // SAFETY: created by Box::into_raw in `start`; the sampler thread has ended.
            let s = unsafe { &*shared };
            // A handler that started before ACTIVE was cleared still holds a reference.
            if s.acks.load(Ordering::Acquire) == s.next.load(Ordering::Acquire) {
                // SAFETY: as above, and no handler is running.
                drop(unsafe { Box::from_raw(shared) });
            } // else leaked on purpose: a late handler may still write into it
        }
        Ok(trace)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.finish();
        }
    }
}

fn sample_loop(
    shared: &Shared,
    interval: Duration,
    stop: &AtomicBool,
    paused: &AtomicBool,
) -> RawTrace {
    let me = gettid();
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    let started = Instant::now();
    let mut trace = RawTrace {
        started: Some(started),
        interval,
        ..Default::default()
    };
    let mut ids: HashMap<Vec<usize>, u32> = HashMap::new();
    // Per thread: CPU time and stack at its last sample; run-queue delay at its last sample,
    // and its open schedstat file.
    let mut last: HashMap<i32, (u64, u32)> = HashMap::new();
    let mut waits: HashMap<i32, u64> = HashMap::new();
    let mut sched: HashMap<i32, std::fs::File> = HashMap::new();
    let mut k: u32 = 0;
    let mut expected = 0usize;
    let mut was_paused = false;
    while !stop.load(Ordering::Acquire) {
        if paused.load(Ordering::Acquire) {
            was_paused = true;
            std::thread::sleep(interval);
            continue;
        }
        let resumed = std::mem::take(&mut was_paused);
        if resumed {
            // Threads ran unseen during the pause: their CPU since then is not this tick's.
            last.clear();
            waits.clear();
        }
        let at = started.elapsed();
        let mut samples = Vec::new();
        // Threads to signal: tid, CPU time, CPU since its last sample, and run-queue delay so
        // far and since its last sample (0 on its first).
        let mut signalled: Vec<(i32, u64, u64, (u64, u64))> = Vec::new();
        let tids = thread_ids();
        sched.retain(|t, _| tids.contains(t));
        for tid in tids {
            if tid == me {
                continue;
            }
            let Some(cpu) = thread_cpu_ns(tid) else {
                continue;
            };
            let now = thread_wait_ns(&mut sched, tid).unwrap_or(0);
            let w = (now, waits.get(&tid).map_or(0, |&p| now.saturating_sub(p)));
            match last.get(&tid) {
                Some(&(prev, stack)) if prev == cpu => {
                    waits.insert(tid, w.0);
                    samples.push(Sample {
                        tid,
                        cpu_ns: 0,
                        wait_ns: w.1,
                        stack,
                    })
                }
                other => {
                    let d = other.map(|&(p, _)| cpu.saturating_sub(p)).unwrap_or(0);
                    signalled.push((tid, cpu, d, w));
                }
            }
            trace
                .thread_names
                .entry(tid)
                .or_insert_with(|| thread_name(tid));
        }
        // Reuse the slots when every handler of the previous tick has answered.
        if shared.acks.load(Ordering::Acquire) == expected {
            for s in shared.slots.iter() {
                s.ready.store(false, Ordering::Relaxed);
            }
            shared.next.store(0, Ordering::Release);
            shared.acks.store(0, Ordering::Release);
            expected = 0;
        } else {
            trace.late_ticks += 1;
        }
        let base = shared.next.load(Ordering::Acquire);
        for &(tid, ..) in &signalled {
            // SAFETY: tgkill with our own pid, a thread id read from /proc, our signal.
            if unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, signal()) } == 0 {
                expected += 1;
            }
        }
        let deadline = Instant::now() + ACK_TIMEOUT;
        while shared.acks.load(Ordering::Acquire) < expected && Instant::now() < deadline {
            std::thread::yield_now();
        }
        let end = shared.next.load(Ordering::Acquire).min(shared.slots.len());
        let mut got: HashMap<i32, u32> = HashMap::new();
        for s in &shared.slots[base.min(end)..end] {
            if !s.ready.load(Ordering::Acquire) {
                continue;
            }
            let n = s.len.load(Ordering::Relaxed);
            let ips: Vec<usize> = s.ips[..n]
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .collect();
            let next_id = ids.len() as u32;
            let id = *ids.entry(ips.clone()).or_insert_with(|| {
                trace.stacks.push(ips);
                next_id
            });
            got.insert(s.tid.load(Ordering::Relaxed), id);
        }
        for (tid, cpu, d, (now, w)) in signalled {
            if let Some(&stack) = got.get(&tid) {
                last.insert(tid, (cpu, stack));
                waits.insert(tid, now);
                samples.push(Sample {
                    tid,
                    cpu_ns: d,
                    wait_ns: w,
                    stack,
                });
            }
        }
        // CPU time of threads whose stack was reused is their CPU time since last sample (0).
        trace.ticks.push(Tick {
            at_ns: at.as_nanos() as u64,
            resumed,
            samples,
        });
        k += 1;
        let mut next = started + interval * k;
        let now = Instant::now();
        if next + interval < now {
            // Behind by more than a tick (a pause, or starved): start the schedule again.
            k = ((now - started).as_nanos() / interval.as_nanos().max(1)) as u32 + 1;
            next = started + interval * k;
        }
        if next > now {
            std::thread::sleep(next - now);
        }
    }
    trace.dropped = shared.dropped.load(Ordering::Relaxed);
    trace
}

/// One symbolised frame.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Demangled function name without its hash (`<a::B as c::D>::forward`).
    pub func: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// Symbolises the trace's stacks: each becomes its frames, innermost first, an address that
/// inlined functions share giving one frame per function.
pub fn symbolize(raw: &RawTrace) -> Vec<Vec<Frame>> {
    let mut cache: HashMap<usize, Vec<Frame>> = HashMap::new();
    raw.stacks
        .iter()
        .map(|ips| {
            let mut out = Vec::new();
            for (i, &ip) in ips.iter().enumerate() {
                // A return address points after the call: look up the call's own line.
                let at = if i == 0 { ip } else { ip.saturating_sub(1) };
                let frames = cache.entry(at).or_insert_with(|| resolve(at));
                out.extend(frames.iter().cloned());
            }
            out
        })
        .collect()
}

fn resolve(addr: usize) -> Vec<Frame> {
    let mut v = Vec::new();
    backtrace::resolve(addr as *mut std::ffi::c_void, |s| {
        let func = s
            .name()
            .map(|n| format!("{n:#}"))
            .unwrap_or_else(|| format!("{addr:#x}"));
        v.push(Frame {
            func,
            file: s.filename().map(|p| p.display().to_string()),
            line: s.lineno(),
        });
    });
    if v.is_empty() {
        v.push(Frame {
            func: format!("{addr:#x}"),
            file: None,
            line: None,
        });
    }
    v
}
