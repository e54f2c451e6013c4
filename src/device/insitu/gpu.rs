//! In-situ attribution on a GPU: the timed windows' kernels and copies (recorded by
//! [`super::cupti`] from CUPTI's activity API), each given to a pipeline part, and the time
//! with no device activity (measured, not a remainder) split by what the host engine thread
//! was doing meanwhile (the CPU sampler's ticks that fall into it).
//!
//! A kernel is named by its part where its name says it ([`GpuRules`], the `[gpu]` table of
//! the engine's attribution rules). GEMMs (cuBLAS, cuBLASLt) share names across parts, so
//! they are placed by their position in the forward pass, which is cut into blocks at each
//! RMSNorm kernel:
//! - a block holding RoPE, an attention kernel or a softmax is an **attention** block: GEMMs
//!   before RoPE are the Q/K/V projections; between RoPE and the softmax they are the
//!   attention's own (Q·Kᵀ), and after the softmax as many again are (P·V), the rest the O
//!   projection; copies between RoPE and the attention are the KV-cache write;
//! - a block holding the activation is an **FFN** block: GEMMs before it are gate/up, after
//!   it down (a GEMV fused with the activation is gate/up, and the GEMMs after it down);
//! - a block with neither (the final norm) is the **head**: its GEMM is the LM head and what
//!   runs after it on the device is sampling.
//!
//! Overlapping activities (several streams) share each instant equally, so the parts and the
//! idle time add up to the windows' length exactly.

use super::rules::{Class, GpuRules, Part, Role, Rules};
use super::{PartShare, Trace, Window};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What a device activity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActKind {
    Kernel,
    /// Host to device, device to host, peer to peer: the copies between memories.
    CopyHtoD,
    CopyDtoH,
    CopyPeer,
    /// Device to device (within one GPU's memory).
    CopyDtoD,
    Memset,
}

/// One kernel or copy on the device, on the trace's clock (ns since the session started).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub kind: ActKind,
    /// Index into [`GpuTrace::names`] (kernels), else `u32::MAX`.
    #[serde(default = "no_name", skip_serializing_if = "is_no_name")]
    pub name: u32,
    pub start_ns: u64,
    pub end_ns: u64,
    #[serde(default)]
    pub stream: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes: u64,
}

fn no_name() -> u32 {
    u32::MAX
}
fn is_no_name(n: &u32) -> bool {
    *n == u32::MAX
}
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What CUPTI recorded in a session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuTrace {
    /// Kernel names, as the driver reports them (mangled where the kernel is C++).
    pub names: Vec<String>,
    /// Sorted by start.
    pub activities: Vec<Activity>,
    /// Records CUPTI dropped (no buffer space), which the breakdown cannot see.
    #[serde(default)]
    pub dropped: u64,
    /// How far CUPTI's clock moved against the host's over the session, ns per s (the
    /// activities are mapped onto the host clock through two readings of both).
    #[serde(default)]
    pub clock_skew_ns_per_s: f64,
}

/// Per-kernel-name time, for the report of what a part holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KernelShare {
    pub name: String,
    pub part: Part,
    pub count: u64,
    /// Device time (overlaps shared), s.
    pub s: f64,
}

/// Copies and memsets of one kind and size, for the report of what `copies` holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CopyShare {
    pub kind: ActKind,
    pub bytes: u64,
    pub count: u64,
    /// Their time inside the windows, s (own durations, clipped to the windows).
    pub s: f64,
}

/// The device side of a GPU breakdown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GpuSplit {
    pub kernels: u64,
    pub copies: u64,
    /// Time some activity ran, and time none did, within the windows, s.
    pub busy_s: f64,
    pub idle_s: f64,
    /// Device-idle intervals longer than 1 µs, and the longest one, µs.
    pub idle_gaps: u64,
    pub longest_gap_us: f64,
    /// Where the host engine thread was during device idle: its share of the engine
    /// thread's ticks that fell into idle intervals, by part (`idle`: blocked on nothing
    /// the rules name, e.g. a device synchronisation returning), and how many ticks that is.
    pub idle_host: Vec<(Part, f64)>,
    pub idle_ticks: u64,
    /// Kernel time by name, largest first (at most 40).
    pub top_kernels: Vec<KernelShare>,
    /// Copy and memset time by kind and size, largest first (at most 12).
    #[serde(default)]
    pub top_copies: Vec<CopyShare>,
    pub dropped: u64,
}

/// What is kept per activity while placing it.
#[derive(Clone, Copy)]
struct Placed {
    start: u64,
    end: u64,
    part: Part,
    name: u32,
    kind: ActKind,
}

/// Places every activity inside `windows` in its part (see the module's text).
fn place(gpu: &GpuTrace, rules: &GpuRules, windows: &[&Window]) -> Vec<Placed> {
    #[derive(PartialEq, Clone, Copy)]
    enum Block {
        /// Before any norm in the window.
        Lead,
        Attn,
        Ffn,
        Head,
    }
    let inside = |a: &Activity| {
        windows
            .iter()
            .any(|w| a.end_ns > w.start_ns && a.start_ns < w.end_ns)
    };
    let acts: Vec<&Activity> = gpu.activities.iter().filter(|a| inside(a)).collect();
    let role_of = |a: &Activity| match a.kind {
        ActKind::Kernel => gpu
            .names
            .get(a.name as usize)
            .map(|n| rules.kernel(n))
            .unwrap_or((Role::Named, None)),
        _ => (Role::Named, None),
    };
    let roles: Vec<(Role, Option<Part>)> = acts.iter().map(|a| role_of(a)).collect();
    // Block boundaries: each norm starts one; a block's kind is what its roles hold.
    let mut starts: Vec<usize> = vec![0];
    starts.extend((0..acts.len()).filter(|&i| roles[i].0 == Role::Norm && i > 0));
    starts.dedup();
    let mut out = Vec::with_capacity(acts.len());
    for (bi, &s) in starts.iter().enumerate() {
        let e = starts.get(bi + 1).copied().unwrap_or(acts.len());
        let has = |r: Role| roles[s..e].iter().any(|x| x.0 == r);
        let block = if roles[s].0 != Role::Norm {
            Block::Lead
        } else if has(Role::Rope) || has(Role::Attention) || has(Role::Softmax) {
            Block::Attn
        } else if has(Role::Activation) || has(Role::GemmActivation) {
            Block::Ffn
        } else {
            Block::Head
        };
        // State within the block.
        let mut after_rope = false;
        let mut after_softmax = false;
        let mut after_core = false;
        let mut after_act = false;
        let mut after_head_gemm = false;
        let mut attn_gemms = 0usize;
        let block_start = out.len();
        for i in s..e {
            let a = acts[i];
            let (role, fixed) = roles[i];
            let copy = matches!(
                a.kind,
                ActKind::CopyHtoD | ActKind::CopyDtoH | ActKind::CopyPeer
            );
            let part = if copy {
                Part::Copies
            } else {
                match (block, role) {
                    (_, Role::Norm) => Part::Rmsnorm,
                    (_, Role::Rope) => {
                        after_rope = true;
                        Part::Rope
                    }
                    (_, Role::KvWrite) => Part::KvWrite,
                    (Block::Attn, Role::Softmax) => {
                        after_softmax = true;
                        Part::Attention
                    }
                    (Block::Attn, Role::Attention) => {
                        after_core = true;
                        Part::Attention
                    }
                    (Block::Attn, Role::Gemm) => {
                        if after_core {
                            Part::QkvoProj
                        } else if after_softmax {
                            if attn_gemms > 0 {
                                attn_gemms -= 1;
                                Part::Attention
                            } else {
                                Part::QkvoProj
                            }
                        } else if after_rope {
                            attn_gemms += 1;
                            Part::Attention
                        } else {
                            Part::QkvoProj
                        }
                    }
                    (Block::Ffn, Role::Activation) => {
                        after_act = true;
                        Part::FfnAct
                    }
                    (Block::Ffn, Role::GemmActivation) => {
                        after_act = true;
                        Part::FfnGateUp
                    }
                    (Block::Ffn, Role::Gemm) if after_act => Part::FfnDown,
                    (Block::Ffn, Role::Gemm) => Part::FfnGateUp,
                    (Block::Head, Role::Gemm) if !after_head_gemm => {
                        after_head_gemm = true;
                        Part::LmHead
                    }
                    // The softmax or an activation outside their blocks, a second head GEMM:
                    // sampling on the device after the LM head, else their name's part.
                    (Block::Head, _)
                        if after_head_gemm && matches!(fixed, None | Some(Part::ModelOther)) =>
                    {
                        Part::Sampling
                    }
                    (Block::Attn, Role::Named)
                        if after_rope
                            && !after_softmax
                            && !after_core
                            && attn_gemms == 0
                            && (a.kind == ActKind::CopyDtoD || fixed == Some(Part::ModelOther)) =>
                    {
                        // Copies between RoPE and the attention: the cache append (and
                        // repeat_kv's copies, which share its kernels).
                        Part::KvWrite
                    }
                    // A GEMM with no place (before the first norm, an unknown block shape).
                    (_, Role::Gemm | Role::GemmActivation) => Part::Unassigned,
                    // Its name's part; else, inside a block, the rest of the forward pass.
                    (_, _) => match fixed {
                        Some(p) => p,
                        None if block != Block::Lead => Part::ModelOther,
                        None => Part::Unassigned,
                    },
                }
            };
            out.push(Placed {
                start: a.start_ns,
                end: a.end_ns,
                part,
                name: a.name,
                kind: a.kind,
            });
        }
        // A GEMM's input quantization takes the part of the GEMM after it in the block.
        for i in (s..e).rev() {
            if roles[i].0 == Role::GemmInput {
                let next = (i + 1..e)
                    .find(|&j| matches!(roles[j].0, Role::Gemm | Role::GemmActivation))
                    .map(|j| out[block_start + j - s].part);
                out[block_start + i - s].part = next.unwrap_or(Part::ModelOther);
            }
        }
    }
    out
}

/// One device activity of a timed window, in launch order, with the part it is placed in.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimelineRow {
    /// The kernel's name, or the copy's (or memset's) kind.
    pub name: String,
    /// Its own duration, µs.
    pub us: f64,
    pub part: Part,
}

/// The activities of one window as [`split`] places them, one launch at a time: what a part's
/// sum is made of (e.g. the copies between a layer's GEMMs, which a name alone cannot place).
pub fn timeline(gpu: &GpuTrace, rules: &Rules, window: &Window) -> Vec<TimelineRow> {
    place(gpu, &rules.gpu, &[window])
        .into_iter()
        .map(|p| TimelineRow {
            name: match p.kind {
                ActKind::Kernel => gpu
                    .names
                    .get(p.name as usize)
                    .cloned()
                    .unwrap_or_else(|| "?".into()),
                k => format!("{k:?}"),
            },
            us: p.end.saturating_sub(p.start) as f64 * 1e-3,
            part: p.part,
        })
        .collect()
}

/// What [`sweep`] returns: device time by part and by kernel name, and the idle intervals.
type Swept = (
    HashMap<Part, f64>,
    HashMap<(u32, Part), f64>,
    Vec<(u64, u64)>,
);

/// Splits the windows' time between the placed activities (overlaps shared equally) and
/// returns per-part device time, per-name time, and the idle intervals.
fn sweep(placed: &[Placed], windows: &[&Window]) -> Swept {
    let mut by_part: HashMap<Part, f64> = HashMap::new();
    let mut by_name: HashMap<(u32, Part), f64> = HashMap::new();
    let mut idle = vec![];
    for w in windows {
        // Events: (time, +1 start / -1 end, index).
        let mut ev: Vec<(u64, i8, usize)> = vec![];
        for (i, p) in placed.iter().enumerate() {
            let (s, e) = (p.start.max(w.start_ns), p.end.min(w.end_ns));
            if e > s {
                ev.push((s, 1, i));
                ev.push((e, -1, i));
            }
        }
        ev.sort_unstable_by_key(|&(t, d, _)| (t, d));
        let mut active: Vec<usize> = vec![];
        let mut t = w.start_ns;
        for (at, d, i) in ev {
            if at > t {
                let dt = (at - t) as f64 * 1e-9;
                if active.is_empty() {
                    idle.push((t, at));
                } else {
                    let each = dt / active.len() as f64;
                    for &j in &active {
                        *by_part.entry(placed[j].part).or_default() += each;
                        *by_name.entry((placed[j].name, placed[j].part)).or_default() += each;
                    }
                }
                t = at;
            }
            if d > 0 {
                active.push(i);
            } else if let Some(k) = active.iter().position(|&j| j == i) {
                active.swap_remove(k);
            }
        }
        if w.end_ns > t {
            idle.push((t, w.end_ns));
        }
    }
    (by_part, by_name, idle)
}

/// The GPU breakdown of the windows of `phase`: device time by part, idle measured and split
/// by the host's part. Returns the parts (wall = device-timeline seconds) and the device
/// side's own figures.
pub(super) fn split(
    trace: &Trace,
    gpu: &GpuTrace,
    windows: &[&Window],
    rules: &Rules,
    (classes, engine): (&[Class], &[i32]),
) -> (HashMap<Part, f64>, Vec<HashMap<Part, f64>>, GpuSplit) {
    let placed = place(gpu, &rules.gpu, windows);
    // One sweep per window (the spread needs each), merged for the totals.
    let swept: Vec<Swept> = windows.iter().map(|w| sweep(&placed, &[*w])).collect();
    let mut by_part: HashMap<Part, f64> = HashMap::new();
    let mut by_name: HashMap<(u32, Part), f64> = HashMap::new();
    let mut idle: Vec<(u64, u64)> = vec![];
    for (p, n, i) in &swept {
        for (k, v) in p {
            *by_part.entry(*k).or_default() += v;
        }
        for (k, v) in n {
            *by_name.entry(*k).or_default() += v;
        }
        idle.extend(i);
    }
    // Sorted and disjoint (windows do not overlap), for the ticks' lookup below.
    idle.sort_unstable();
    let idle_s: f64 = idle.iter().map(|(a, b)| (b - a) as f64 * 1e-9).sum();
    // The host's part at ticks inside idle intervals (the engine thread's).
    let mut host: HashMap<Part, u64> = HashMap::new();
    let mut idle_ticks = 0u64;
    for t in &trace.ticks {
        let k = idle.partition_point(|&(a, _)| a <= t.at_ns);
        if k > 0 && t.at_ns < idle[k - 1].1 {
            let p = t
                .samples
                .iter()
                .filter(|s| engine.contains(&s.tid))
                .filter_map(|s| classes.get(s.stack as usize).map(|c| c.part))
                .find(|p| p.is_work())
                .unwrap_or(Part::Idle);
            *host.entry(p).or_default() += 1;
            idle_ticks += 1;
        }
    }
    let mut idle_host: Vec<(Part, f64)> = host
        .iter()
        .map(|(p, n)| (*p, *n as f64 / idle_ticks.max(1) as f64))
        .collect();
    // Largest first; ties in part order, so that a split prints the same every time.
    idle_host.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    // Idle time the host spends outside the forward pass is that host part's (sampling, the
    // engine's own work); the rest stays device idle (launch gaps, synchronisations).
    let host_share = |p: Part| idle_host.iter().find(|x| x.0 == p).map_or(0.0, |x| x.1);
    let split_idle = |m: &mut HashMap<Part, f64>, idle_s: f64| {
        let mut rest = idle_s;
        for p in [Part::Sampling, Part::HostEngine] {
            let s = host_share(p) * idle_s;
            if s > 0.0 {
                *m.entry(p).or_default() += s;
                rest -= s;
            }
        }
        if rest > 0.0 {
            *m.entry(Part::DeviceIdle).or_default() += rest;
        }
    };
    split_idle(&mut by_part, idle_s);
    let per_window: Vec<HashMap<Part, f64>> = swept
        .into_iter()
        .map(|(mut m, _, idle_w)| {
            split_idle(
                &mut m,
                idle_w.iter().map(|(a, b)| (b - a) as f64 * 1e-9).sum(),
            );
            m
        })
        .collect();
    // One row per kernel name and part (cuBLAS's GEMV serves several parts).
    let mut counts: HashMap<(u32, Part), u64> = HashMap::new();
    for p in &placed {
        *counts.entry((p.name, p.part)).or_default() += 1;
    }
    let mut top: Vec<KernelShare> = by_name
        .iter()
        .filter(|((n, _), _)| *n != u32::MAX)
        .map(|(&(n, part), s)| KernelShare {
            name: gpu.names.get(n as usize).cloned().unwrap_or_default(),
            part,
            count: counts.get(&(n, part)).copied().unwrap_or(0),
            s: *s,
        })
        .collect();
    top.sort_by(|a, b| {
        b.s.total_cmp(&a.s)
            .then_with(|| (&a.name, a.part).cmp(&(&b.name, b.part)))
    });
    top.truncate(40);
    let mut copies: HashMap<(ActKind, u64), (u64, f64)> = HashMap::new();
    for a in gpu.activities.iter().filter(|a| a.kind != ActKind::Kernel) {
        let inside: u64 = windows
            .iter()
            .map(|w| {
                a.end_ns
                    .min(w.end_ns)
                    .saturating_sub(a.start_ns.max(w.start_ns))
            })
            .sum();
        if inside > 0 || windows.iter().any(|w| w.holds(a.start_ns)) {
            let e = copies.entry((a.kind, a.bytes)).or_default();
            e.0 += 1;
            e.1 += inside as f64 * 1e-9;
        }
    }
    let mut top_copies: Vec<CopyShare> = copies
        .into_iter()
        .map(|((kind, bytes), (count, s))| CopyShare {
            kind,
            bytes,
            count,
            s,
        })
        .collect();
    top_copies.sort_by(|a, b| b.s.total_cmp(&a.s).then(a.bytes.cmp(&b.bytes)));
    top_copies.truncate(12);
    let gaps: Vec<f64> = idle
        .iter()
        .map(|(a, b)| (b - a) as f64 * 1e-3)
        .filter(|us| *us > 1.0)
        .collect();
    let window_s: f64 = windows.iter().map(|w| w.len_s()).sum();
    let kernels = placed.iter().filter(|p| p.name != u32::MAX).count() as u64;
    let g = GpuSplit {
        kernels,
        copies: placed.len() as u64 - kernels,
        busy_s: window_s - idle_s,
        idle_s,
        idle_gaps: gaps.len() as u64,
        longest_gap_us: gaps.iter().copied().fold(0.0, f64::max),
        idle_host,
        idle_ticks,
        top_kernels: top,
        top_copies,
        dropped: gpu.dropped,
    };
    (by_part, per_window, g)
}

/// A part's share entries of a GPU split: wall is device-timeline time; the CPU columns are
/// left empty (the host's CPU time is the CPU view's).
pub(super) fn shares(
    by_part: &HashMap<Part, f64>,
    per_window: &[HashMap<Part, f64>],
    windows: &[&Window],
    units: u64,
) -> Vec<PartShare> {
    let total: f64 = by_part.values().sum();
    let mut keys: Vec<Part> = by_part.keys().copied().collect();
    keys.sort();
    let units_per_window = (units as f64 / windows.len().max(1) as f64).max(1e-12);
    keys.into_iter()
        .map(|p| {
            let w = by_part[&p];
            let each: Vec<f64> = per_window
                .iter()
                .map(|m| m.get(&p).copied().unwrap_or(0.0) / units_per_window * 1e3)
                .collect();
            let lo = each.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = each.iter().copied().fold(0.0, f64::max);
            PartShare {
                part: p,
                wall_s: w,
                wall_share: if total > 0.0 { w / total } else { 0.0 },
                per_unit_ms: super::per_unit_ms(w, units),
                per_unit_range_ms: [if lo.is_finite() { lo } else { 0.0 }, hi],
                cpu_s: 0.0,
                cpu_share: 0.0,
                wait_s: 0.0,
                pool_wait_s: 0.0,
            }
        })
        .collect()
}
