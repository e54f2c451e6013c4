//! In-situ attribution: the engine's own run split by pipeline part.
//!
//! - [`sampler`]: wall-clock snapshots of every thread's stack (CPU).
//! - [`cupti`] (feature `cupti`): the device's kernels and copies from CUPTI's activity API.
//! - [`gpu`]: a device timeline split by part, its idle time split by the host's part.
//! - [`rules`]: the table type that maps an engine stack to a [`Part`] (the tables, one per
//!   mistral.rs release, are the engine layer's: `crate::engine::attribution_rules`).
//! - this file: a [`Session`] around timed regions, the symbolised [`Trace`] (what fixtures
//!   hold), and [`attribute`], which turns a trace into a [`Breakdown`].
//!
//! Two views, both over the ticks inside the timed windows only:
//! - **wall**: at each tick, the part the engine thread is in (a thread blocked while the pool
//!   runs its matmul is still *in* that matmul, since its stack says so); each tick weighs the
//!   time since the previous one. This splits the measured time per token.
//! - **cpu**: each thread's CPU time since its previous sample, given to the part its stack
//!   shows; a pool thread whose stack holds no engine frame gets the engine thread's part at
//!   the same tick (the caller that waits for it).

#[cfg(feature = "cupti")]
pub mod cupti;
pub mod gpu;
pub mod rules;
pub mod sampler;
pub mod symbols;

pub use gpu::{ActKind, Activity, GpuSplit, GpuTrace};
pub use rules::{Class, Part, Rules};
pub use sampler::{Frame, Sample, Tick};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

/// Set to run the in-situ attribution pass of every `generation` case (`1`, `on`).
pub const ENV: &str = "MISTRALRS_BENCH_INSITU";
/// Sampling rate, Hz (default 50: on the 2-core machine, 2026-12-01, 250 Hz cost 6-25 % of
/// the timed figure and 100 Hz 1-11 %, most on the GGUF prefill, whose busy pool threads have
/// the deepest stacks to unwind; on a GPU, where the host's ticks only split the device's
/// idle time and the host has cores to spare, 500).
pub const HZ_ENV: &str = "MISTRALRS_BENCH_INSITU_HZ";
/// A folder to write each attributed case's symbolised trace into (JSON), for new fixtures.
pub const DUMP_ENV: &str = "MISTRALRS_BENCH_INSITU_DUMP";

/// Whether the environment asks for attribution.
pub fn enabled() -> bool {
    matches!(
        std::env::var(ENV).ok().as_deref().map(str::trim),
        Some("1" | "on" | "true" | "yes")
    )
}

/// The sampling interval from [`HZ_ENV`] (its default: 500 Hz with a device, else 50).
pub fn interval(gpu: bool) -> Result<Duration> {
    let hz = match std::env::var(HZ_ENV) {
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(h) if (1.0..=5000.0).contains(&h) => h,
            _ => bail!("{HZ_ENV} must be a rate in Hz between 1 and 5000, not `{v}`"),
        },
        Err(_) if gpu => 500.0,
        Err(_) => 50.0,
    };
    Ok(Duration::from_secs_f64(1.0 / hz))
}

/// A symbolised trace: what the sampler saw, with the timed windows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Trace {
    /// The engine release the run used (the rules must be written for it).
    pub engine: String,
    pub interval_ns: u64,
    pub ticks: Vec<Tick>,
    /// Stacks, innermost frame first.
    pub stacks: Vec<Vec<Frame>>,
    pub threads: BTreeMap<i32, String>,
    /// The timed regions.
    pub windows: Vec<Window>,
    #[serde(default)]
    pub dropped: usize,
    #[serde(default)]
    pub late_ticks: usize,
    /// What the windows' units are (`token`, `request`).
    #[serde(default = "token")]
    pub unit: String,
    /// Where the executable was mapped, so that a stripped build's addresses can be resolved
    /// offline ([`symbols::resymbolize`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<symbols::ExeMap>,
    /// The device's kernels and copies (CUDA runs; none on CPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuTrace>,
}

fn token() -> String {
    "token".into()
}

impl Trace {
    pub fn load(path: &Path) -> Result<Trace> {
        crate::util::json::read(path, "an in-situ trace")
    }

    /// Every stack classified by `rules`, in stack order (a sample's `stack` indexes it).
    pub fn classes(&self, rules: &Rules) -> Vec<Class> {
        self.stacks.iter().map(|s| rules.classify(s)).collect()
    }

    /// The engine threads: whichever threads ever showed the engine loop, sorted.
    pub fn engine_threads(&self, classes: &[Class]) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .ticks
            .iter()
            .flat_map(|t| &t.samples)
            .filter(|s| classes.get(s.stack as usize).is_some_and(|c| c.engine))
            .map(|s| s.tid)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The windows of `phase` (all: None).
    pub fn windows_of<'a>(&'a self, phase: Option<&'a str>) -> impl Iterator<Item = &'a Window> {
        self.windows
            .iter()
            .filter(move |w| phase.is_none_or(|p| w.phase == p))
    }
}

/// A timed region of a trace: ns since the session started, and what it times.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Window {
    pub phase: String,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Tokens (or requests) the window timed, so that a dumped trace can be split again
    /// without its run (0: not recorded).
    #[serde(default)]
    pub units: u64,
}

impl Window {
    pub fn len_s(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 * 1e-9
    }
    pub fn holds(&self, at_ns: u64) -> bool {
        (self.start_ns..=self.end_ns).contains(&at_ns)
    }
}

/// A sampler (and, on a GPU, CUPTI's activity record) running around timed regions.
pub struct Session {
    engine: String,
    sampler: sampler::Sampler,
    #[cfg(feature = "cupti")]
    device: Option<cupti::Recorder>,
    windows: Vec<(String, Instant, Instant, u64)>,
}

impl Session {
    /// Starts sampling a run of `engine` (its name and release, recorded in the trace); with
    /// `gpu`, the device's kernels and copies are recorded too (the `cupti` feature).
    pub fn start(engine: &str, gpu: bool) -> Result<Session> {
        #[cfg(feature = "cupti")]
        let device = if gpu {
            Some(cupti::Recorder::start()?)
        } else {
            None
        };
        #[cfg(not(feature = "cupti"))]
        if gpu {
            bail!(
                "in-situ attribution on a GPU records the device's kernels with CUPTI: build \
                 with `--features cupti` (the host's stacks alone cannot split a GPU's time)"
            );
        }
        Ok(Session {
            engine: engine.to_string(),
            sampler: sampler::Sampler::start(interval(gpu)?)?,
            #[cfg(feature = "cupti")]
            device,
            windows: vec![],
        })
    }

    /// Stops taking snapshots and device records (for an iteration timed without
    /// attribution) until `resume`.
    pub fn pause(&self) -> Result<()> {
        self.sampler.pause();
        #[cfg(feature = "cupti")]
        if let Some(d) = &self.device {
            d.pause()?;
        }
        Ok(())
    }

    pub fn resume(&self) -> Result<()> {
        #[cfg(feature = "cupti")]
        if let Some(d) = &self.device {
            d.resume()?;
        }
        self.sampler.resume();
        Ok(())
    }

    /// Sets up iteration `i` of an ABBA schedule (without, with, with, without, ...), so
    /// that a drift in the machine falls on both sides alike: resumes attribution for the
    /// attributed iterations, pauses it for the others, and says which this one is.
    pub fn abba(&self, i: usize) -> Result<bool> {
        let attributed = matches!(i % 4, 1 | 2);
        if attributed {
            self.resume()?;
        } else {
            self.pause()?;
        }
        Ok(attributed)
    }

    /// Marks `[start, end]` as a timed region of `phase` that timed `units` tokens (or
    /// requests).
    pub fn window(&mut self, phase: &str, start: Instant, end: Instant, units: u64) {
        self.windows.push((phase.to_string(), start, end, units));
    }

    /// Stops sampling and symbolises (outside every timed region).
    pub fn finish(self) -> Result<Trace> {
        #[cfg(feature = "cupti")]
        let device = self.device.map(|d| d.finish()).transpose()?;
        let raw = self.sampler.stop()?;
        let Some(t0) = raw.started else {
            bail!("the sampler recorded nothing");
        };
        let ns = |t: Instant| t.saturating_duration_since(t0).as_nanos() as u64;
        #[cfg(feature = "cupti")]
        let gpu = device.map(|d| d.on_clock(t0));
        #[cfg(not(feature = "cupti"))]
        let gpu = None;
        Ok(Trace {
            engine: self.engine,
            interval_ns: raw.interval.as_nanos() as u64,
            stacks: sampler::symbolize(&raw),
            ticks: raw.ticks,
            threads: raw.thread_names.into_iter().collect(),
            windows: self
                .windows
                .iter()
                .map(|(p, a, b, u)| Window {
                    phase: p.clone(),
                    start_ns: ns(*a),
                    end_ns: ns(*b),
                    units: *u,
                })
                .collect(),
            dropped: raw.dropped,
            late_ticks: raw.late_ticks,
            unit: token(),
            exe: symbols::exe_map(),
            gpu,
        })
    }
}

/// One part's share of a breakdown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartShare {
    pub part: Part,
    /// Wall time the engine thread spent in the part, s, and its share of the sampled time.
    pub wall_s: f64,
    pub wall_share: f64,
    /// The part's wall time per unit (token or request), ms.
    pub per_unit_ms: f64,
    /// The lowest and highest per-unit figure of the windows taken one by one (the spread
    /// of the part over the attributed iterations), ms.
    #[serde(default)]
    pub per_unit_range_ms: [f64; 2],
    /// CPU time of all threads in the part, s, and its share of all CPU time sampled.
    pub cpu_s: f64,
    pub cpu_share: f64,
    /// Run-queue delay in the part, s: time a thread was runnable but had no CPU (preempted,
    /// or woken and not yet running). `wait_s` is the engine thread's own, `pool_wait_s` the
    /// pool threads' (given to the part the engine thread is in, as their CPU time is).
    #[serde(default)]
    pub wait_s: f64,
    #[serde(default)]
    pub pool_wait_s: f64,
}

/// A case's time split by part.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Breakdown {
    /// The engine release and the rules that split it.
    pub engine: String,
    /// The phase of the windows split (None: all).
    #[serde(default)]
    pub phase: Option<String>,
    pub rules: String,
    pub hz: f64,
    /// Ticks inside the timed windows, and threads seen.
    pub ticks: usize,
    pub threads: usize,
    /// What the units are (`token`, `request`) and how many the windows hold.
    pub unit: String,
    pub units: u64,
    /// Sum of the tick weights inside the windows, s, and the windows' own length, s.
    pub sampled_s: f64,
    pub timed_s: f64,
    /// sampled / timed: how fully the ticks cover the timed time.
    pub coverage: f64,
    /// The attributed run's time per unit, ms (timed_s / units).
    pub per_unit_ms: f64,
    pub parts: Vec<PartShare>,
    /// Share of wall time and of CPU time that no rule (and no caller) explains.
    pub unassigned_wall: f64,
    pub unassigned_cpu: f64,
    /// Handler runs that found no slot, ticks whose handlers did not all answer.
    pub dropped: usize,
    pub late_ticks: usize,
    /// The same case timed without the sampler, ms per unit (set by the caller), and the
    /// sampler's overhead on the timed figure, % (with / without − 1).
    #[serde(default)]
    pub without_ms: Option<f64>,
    #[serde(default)]
    pub overhead_pct: Option<f64>,
    /// The suite's own timed figure of the case (Criterion's median), ms per unit, and how
    /// far the attributed run's time per unit is from it, %.
    #[serde(default)]
    pub suite_ms: Option<f64>,
    #[serde(default)]
    pub vs_suite_pct: Option<f64>,
    /// On a GPU: the device timeline's own figures (parts' wall time is then device time,
    /// `unassigned_wall` the share of the windows no kernel rule placed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuSplit>,
    /// The engine thread's run-queue delay over the windows' time: the share of the timed
    /// time it was runnable but had no CPU (None: a trace recorded before this was read).
    #[serde(default)]
    pub engine_wait_share: Option<f64>,
}

impl Breakdown {
    /// The share entry of `part`, if any time went to it.
    pub fn part(&self, part: Part) -> Option<&PartShare> {
        self.parts.iter().find(|p| p.part == part)
    }

    /// Records the suite's own timed figure of the case, ms per unit.
    pub fn set_suite(&mut self, suite_ms_per_unit: f64) {
        self.suite_ms = Some(suite_ms_per_unit);
        if suite_ms_per_unit > 0.0 {
            self.vs_suite_pct = Some((self.per_unit_ms / suite_ms_per_unit - 1.0) * 100.0);
        }
    }

    /// Records the same case timed without attribution.
    pub fn set_without(&mut self, without_ms_per_unit: f64) {
        self.without_ms = Some(without_ms_per_unit);
        if without_ms_per_unit > 0.0 {
            self.overhead_pct = Some((self.per_unit_ms / without_ms_per_unit - 1.0) * 100.0);
        }
    }
}

/// Splits the windows of `phase` (all: None) of a trace by part with `rules`; `units` tokens
/// or requests were timed in those windows.
pub fn attribute(
    trace: &Trace,
    phase: Option<&str>,
    rules: &Rules,
    unit: &str,
    units: u64,
) -> Result<Breakdown> {
    let windows: Vec<&Window> = trace.windows_of(phase).collect();
    if windows.is_empty() {
        bail!(
            "the trace has no timed window{}",
            phase.map(|p| format!(" of `{p}`")).unwrap_or_default()
        );
    }
    if let Some(g) = &trace.gpu {
        return Ok(attribute_gpu(trace, g, &windows, phase, rules, unit, units));
    }
    let classes = trace.classes(rules);
    let class = |s: &Sample| classes.get(s.stack as usize).copied();
    let engine_tids = trace.engine_threads(&classes);
    // Pool workers known by their thread's name, not a frame (candle 0.11's `candle-bp-N`,
    // whose stacks need not show the pool): named once, not per sample.
    let named_pool: std::collections::HashSet<i32> = trace
        .threads
        .iter()
        .filter(|(_, n)| rules.is_pool_thread(n))
        .map(|(t, _)| *t)
        .collect();
    let window_of = |at: u64| windows.iter().position(|w| w.holds(at));
    let mut wall: HashMap<Part, f64> = HashMap::new();
    // Per window: wall time by part.
    let mut per_window: Vec<HashMap<Part, f64>> = vec![HashMap::new(); windows.len()];
    let mut cpu: HashMap<Part, f64> = HashMap::new();
    let mut wait: HashMap<Part, f64> = HashMap::new();
    let mut pool_wait: HashMap<Part, f64> = HashMap::new();
    let mut ticks = 0usize;
    let mut prev_at: Option<u64> = None;
    for t in &trace.ticks {
        let dt = match prev_at {
            _ if t.resumed => trace.interval_ns,
            Some(p) => t.at_ns.saturating_sub(p),
            None => 0,
        };
        prev_at = Some(t.at_ns);
        let Some(wi) = window_of(t.at_ns) else {
            continue;
        };
        ticks += 1;
        let here: Vec<Part> = t
            .samples
            .iter()
            .filter(|s| engine_tids.contains(&s.tid))
            .filter_map(|s| class(s).map(|c| c.part))
            .collect();
        let engine_part = here
            .iter()
            .copied()
            .find(|p| p.is_work())
            .or_else(|| here.first().copied())
            .unwrap_or(Part::Unassigned);
        *wall.entry(engine_part).or_default() += dt as f64 * 1e-9;
        *per_window[wi].entry(engine_part).or_default() += dt as f64 * 1e-9;
        for s in &t.samples {
            if engine_tids.contains(&s.tid) {
                *wait.entry(engine_part).or_default() += s.wait_ns as f64 * 1e-9;
            }
            if s.cpu_ns == 0 && s.wait_ns == 0 {
                continue;
            }
            let Some(mut c) = class(s) else { continue };
            c.pool |= named_pool.contains(&s.tid);
            if c.pool && !engine_tids.contains(&s.tid) {
                *pool_wait.entry(engine_part).or_default() += s.wait_ns as f64 * 1e-9;
            }
            if s.cpu_ns == 0 {
                continue;
            }
            let own_explains = c.part.is_work() && !(c.pool && c.part == Part::HostEngine);
            let part = if own_explains {
                c.part
            } else if c.pool {
                engine_part
            } else {
                Part::Unassigned
            };
            *cpu.entry(part).or_default() += s.cpu_ns as f64 * 1e-9;
        }
    }
    let sampled: f64 = wall.values().sum();
    let cpu_total: f64 = cpu.values().sum();
    let timed: f64 = windows.iter().map(|w| w.len_s()).sum();
    let share = |x: f64, of: f64| if of > 0.0 { x / of } else { 0.0 };
    let mut keys: Vec<Part> = wall
        .keys()
        .chain(cpu.keys())
        .chain(wait.keys())
        .chain(pool_wait.keys())
        .copied()
        .collect();
    keys.sort();
    keys.dedup();
    let parts: Vec<PartShare> = keys
        .into_iter()
        .map(|p| {
            let w = wall.get(&p).copied().unwrap_or(0.0);
            let c = cpu.get(&p).copied().unwrap_or(0.0);
            // Each window on its own: its share of the part times its length, per unit.
            let units_per_window = units as f64 / windows.len() as f64;
            let each: Vec<f64> = per_window
                .iter()
                .zip(&windows)
                .map(|(m, win)| {
                    let tot: f64 = m.values().sum();
                    let x = m.get(&p).copied().unwrap_or(0.0);
                    share(x, tot) * win.len_s() / units_per_window.max(1e-12) * 1e3
                })
                .collect();
            let lo = each.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = each.iter().copied().fold(0.0, f64::max);
            PartShare {
                part: p,
                per_unit_range_ms: [if lo.is_finite() { lo } else { 0.0 }, hi],
                wall_s: w,
                wall_share: share(w, sampled),
                // The sampled share of the timed figure, so parts sum to the timed time.
                per_unit_ms: per_unit_ms(share(w, sampled) * timed, units),
                cpu_s: c,
                cpu_share: share(c, cpu_total),
                wait_s: wait.get(&p).copied().unwrap_or(0.0),
                pool_wait_s: pool_wait.get(&p).copied().unwrap_or(0.0),
            }
        })
        .collect();
    let unassigned = |m: &HashMap<Part, f64>, of: f64| {
        share(m.get(&Part::Unassigned).copied().unwrap_or(0.0), of)
    };
    let mut b = Breakdown::of_windows(trace, phase, rules, (unit, units), ticks, sampled, timed);
    b.unassigned_wall = unassigned(&wall, sampled);
    b.unassigned_cpu = unassigned(&cpu, cpu_total);
    b.parts = parts;
    // The engine threads' delay, summed over its parts above.
    b.engine_wait_share = wait_share(wait.values().sum(), timed);
    Ok(b)
}

impl Breakdown {
    /// A breakdown's common fields: the trace's, the rules', the windows' (`ticks` inside
    /// them, `sampled` and `timed` seconds); no parts yet, nothing set by a caller.
    fn of_windows(
        trace: &Trace,
        phase: Option<&str>,
        rules: &Rules,
        (unit, units): (&str, u64),
        ticks: usize,
        sampled: f64,
        timed: f64,
    ) -> Breakdown {
        Breakdown {
            engine: trace.engine.clone(),
            phase: phase.map(str::to_string),
            rules: rules.engine.clone(),
            hz: if trace.interval_ns > 0 {
                1e9 / trace.interval_ns as f64
            } else {
                0.0
            },
            ticks,
            threads: trace.threads.len(),
            unit: unit.to_string(),
            units,
            sampled_s: sampled,
            timed_s: timed,
            coverage: if timed > 0.0 { sampled / timed } else { 0.0 },
            per_unit_ms: per_unit_ms(timed, units),
            parts: vec![],
            unassigned_wall: 0.0,
            unassigned_cpu: 0.0,
            dropped: trace.dropped,
            late_ticks: trace.late_ticks,
            without_ms: None,
            overhead_pct: None,
            suite_ms: None,
            vs_suite_pct: None,
            gpu: None,
            engine_wait_share: None,
        }
    }
}

/// `seconds` per unit in ms (0 without units).
fn per_unit_ms(seconds: f64, units: u64) -> f64 {
    if units > 0 {
        seconds / units as f64 * 1e3
    } else {
        0.0
    }
}

/// The units the windows of `phase` recorded (dumped traces carry them).
pub fn window_units(trace: &Trace, phase: Option<&str>) -> u64 {
    trace.windows_of(phase).map(|w| w.units).sum()
}

fn attribute_gpu(
    trace: &Trace,
    g: &GpuTrace,
    windows: &[&Window],
    phase: Option<&str>,
    rules: &Rules,
    unit: &str,
    units: u64,
) -> Breakdown {
    let classes = trace.classes(rules);
    let engine_tids = trace.engine_threads(&classes);
    let (by_part, per_window, split) =
        gpu::split(trace, g, windows, rules, (&classes, &engine_tids));
    let parts = gpu::shares(&by_part, &per_window, windows, units);
    let timed: f64 = windows.iter().map(|w| w.len_s()).sum();
    let sampled: f64 = by_part.values().sum();
    let share = |x: f64, of: f64| if of > 0.0 { x / of } else { 0.0 };
    let ticks = trace
        .ticks
        .iter()
        .filter(|t| windows.iter().any(|w| w.holds(t.at_ns)))
        .count();
    let mut b = Breakdown::of_windows(trace, phase, rules, (unit, units), ticks, sampled, timed);
    b.unassigned_wall = share(
        by_part.get(&Part::Unassigned).copied().unwrap_or(0.0),
        sampled,
    );
    b.parts = parts;
    b.gpu = Some(split);
    b.engine_wait_share = wait_share(engine_wait_s(trace, windows, &engine_tids), timed);
    b
}

/// The engine threads' run-queue delay at the ticks inside `windows`, s.
fn engine_wait_s(trace: &Trace, windows: &[&Window], engine_tids: &[i32]) -> f64 {
    trace
        .ticks
        .iter()
        .filter(|t| windows.iter().any(|w| w.holds(t.at_ns)))
        .flat_map(|t| &t.samples)
        .filter(|s| engine_tids.contains(&s.tid))
        .map(|s| s.wait_ns as f64 * 1e-9)
        .sum()
}

/// `waited` seconds over `timed` (None: no delay read, as in traces recorded before the
/// sampler read it).
fn wait_share(waited: f64, timed: f64) -> Option<f64> {
    (waited > 0.0 && timed > 0.0).then(|| waited / timed)
}
