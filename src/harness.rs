//! Criterion integration: run profiles, the timed loop with device synchronisation, skipping,
//! and the machine-readable summary written after a run.

use crate::case::{Ctx, Runner, Spec};
use crate::config::{dtype_name, Models, Preset};
use crate::{ceilings, device, profiler::PprofProfiler, summary};
use anyhow::Result;
use candle_core::Device;
use criterion::{Criterion, SamplingMode, Throughput};
use once_cell::sync::Lazy;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Test knob: `MISTRALRS_BENCH_SLOWDOWN=<regex>=<fraction>` makes every case whose id
/// matches take `fraction` longer (a busy wait inside the timed region, proportional to the
/// measured work), so the verdict of `compare` can be checked against a known slowdown.
pub const SLOWDOWN_ENV: &str = "MISTRALRS_BENCH_SLOWDOWN";

/// The slowdown the test knob asks for `full_id`, if any.
pub fn slowdown_for(full_id: &str) -> Option<f64> {
    let v = std::env::var(SLOWDOWN_ENV).ok()?;
    let (re, frac) = v.rsplit_once('=')?;
    let frac: f64 = frac.parse().ok()?;
    regex::Regex::new(re)
        .ok()?
        .is_match(full_id)
        .then_some(frac)
}

/// Busy-waits for `d` (a sleep would be too coarse for microsecond cases).
fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Environment variable that picks a run profile: `quick`, `default` or `full`.
pub const PROFILE_ENV: &str = "MISTRALRS_BENCH_PROFILE";

/// Warm-up, measurement time and sample count of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RunProfile {
    pub name: &'static str,
    pub warm_up_ms: u64,
    pub measurement_ms: u64,
    pub sample_size: usize,
}

impl RunProfile {
    /// Short runs for a lent GPU or a first look: 0.3 s warm-up, 1 s measurement, 10 samples.
    pub const QUICK: RunProfile = RunProfile {
        name: "quick",
        warm_up_ms: 300,
        measurement_ms: 1000,
        sample_size: 10,
    };
    /// The default: 1 s warm-up, 3 s measurement, 20 samples per case.
    pub const DEFAULT: RunProfile = RunProfile {
        name: "default",
        warm_up_ms: 1000,
        measurement_ms: 3000,
        sample_size: 20,
    };
    /// Criterion's own defaults: 3 s warm-up, 5 s measurement, 100 samples.
    pub const FULL: RunProfile = RunProfile {
        name: "full",
        warm_up_ms: 3000,
        measurement_ms: 5000,
        sample_size: 100,
    };

    pub fn from_env() -> Result<RunProfile> {
        match std::env::var(PROFILE_ENV).as_deref() {
            Err(_) | Ok("default") | Ok("") => Ok(Self::DEFAULT),
            Ok("quick") => Ok(Self::QUICK),
            Ok("full") => Ok(Self::FULL),
            Ok(other) => anyhow::bail!("{PROFILE_ENV}=`{other}`: use quick, default or full"),
        }
    }
}

/// What the command line asked Criterion to do (only `Bench` produces estimates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bench,
    List,
    Test,
    Profile,
}

pub fn mode_from_args() -> Mode {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        Mode::List
    } else if args.iter().any(|a| a == "--test") {
        Mode::Test
    } else if args
        .iter()
        .any(|a| a == "--profile-time" || a.starts_with("--profile-time="))
    {
        Mode::Profile
    } else {
        Mode::Bench
    }
}

/// Outcome of one case in this run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Record {
    pub group: String,
    pub id: String,
    pub preset: String,
    pub dtype: String,
    pub shape: String,
    pub cost: crate::case::Cost,
    /// Tokens per iteration (end-to-end cases).
    pub tokens: Option<u64>,
    /// `ok`, `skipped` or `failed`.
    pub status: String,
    pub reason: Option<String>,
    pub extra: serde_json::Value,
}

impl Record {
    pub fn full_id(&self) -> String {
        format!("{}/{}", self.group, self.id)
    }
}

static RECORDS: Lazy<Mutex<Vec<Record>>> = Lazy::new(|| Mutex::new(Vec::new()));

fn record(r: Record) {
    RECORDS.lock().expect("records lock").push(r);
}

/// The records of this process's run so far.
pub fn records() -> Vec<Record> {
    RECORDS.lock().expect("records lock").clone()
}

/// Everything a bench group needs, read once from the environment.
pub struct Setup {
    pub device: Device,
    pub presets: Vec<Preset>,
    pub profile: RunProfile,
}

static SETUP: Lazy<Setup> = Lazy::new(|| match try_setup() {
    Ok(s) => s,
    Err(e) => {
        eprintln!("mistral-rs-bench: {e:#}");
        std::process::exit(2);
    }
});

fn try_setup() -> Result<Setup> {
    let models = Models::load_default()?;
    let presets = models.selected()?;
    let device = device::from_env()?;
    let profile = RunProfile::from_env()?;
    Ok(Setup {
        device,
        presets,
        profile,
    })
}

/// The process-wide set-up (device, presets, profile); exits with a message on bad input.
pub fn setup() -> &'static Setup {
    &SETUP
}

/// Criterion configured with the run profile and the pprof profiler; command-line flags
/// (`--warm-up-time`, `--measurement-time`, `--sample-size`, ...) still override the profile.
pub fn criterion() -> Criterion {
    let p = setup().profile;
    let c = Criterion::default()
        .warm_up_time(Duration::from_millis(p.warm_up_ms))
        .measurement_time(Duration::from_millis(p.measurement_ms))
        .sample_size(p.sample_size)
        .with_profiler(PprofProfiler::new(997));
    let c = if p == RunProfile::QUICK {
        c.without_plots().nresamples(10_000)
    } else {
        c
    };
    c.configure_from_args()
}

/// Per-group sampling settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupOpts {
    /// Override the profile's sample count (Criterion's minimum is 10).
    pub sample_size: Option<usize>,
    /// Flat sampling: the same iteration count in every sample (for long cases).
    pub flat: bool,
    /// Override the profile's warm-up time.
    pub warm_up: Option<Duration>,
    /// Override the profile's measurement time.
    pub measurement: Option<Duration>,
}

impl GroupOpts {
    /// Whole requests take seconds: 10 samples of one request each (flat sampling), short
    /// warm-up and measurement targets (each case already ran one untimed request).
    pub fn end_to_end() -> Self {
        GroupOpts {
            sample_size: Some(10),
            flat: true,
            warm_up: Some(Duration::from_millis(100)),
            measurement: Some(Duration::from_millis(100)),
        }
    }
}

/// Runs one pipeline part: the cases `gen` makes for every selected preset, in one
/// Criterion group named after the part.
pub fn run_part(c: &mut Criterion, group: &'static str, gen: fn(&Preset, &Ctx) -> Vec<Spec>) {
    run_part_with(c, group, gen, GroupOpts::default())
}

/// [`run_part`] with group-specific sampling.
pub fn run_part_with(
    c: &mut Criterion,
    group: &'static str,
    gen: fn(&Preset, &Ctx) -> Vec<Spec>,
    opts: GroupOpts,
) {
    let s = setup();
    let mut g = c.benchmark_group(group);
    if let Some(n) = opts.sample_size {
        g.sample_size(n);
    }
    if let Some(d) = opts.warm_up {
        g.warm_up_time(d);
    }
    if let Some(d) = opts.measurement {
        g.measurement_time(d);
    }
    g.sampling_mode(if opts.flat {
        SamplingMode::Flat
    } else {
        SamplingMode::Auto
    });
    for preset in &s.presets {
        let dtype = match device::compute_dtype(&s.device, preset.dtype()) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("mistral-rs-bench: {e:#}");
                std::process::exit(2);
            }
        };
        let ctx = Ctx {
            device: s.device.clone(),
            dtype,
        };
        for spec in gen(preset, &ctx) {
            bench_spec(&mut g, preset, &ctx, spec);
        }
    }
    g.finish();
    // Write what this group measured now, so a run cut short keeps its finished groups.
    flush(false);
}

fn bench_spec(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    preset: &Preset,
    ctx: &Ctx,
    mut spec: Spec,
) {
    let mut rec = Record {
        group: spec.group.to_string(),
        id: spec.id.clone(),
        preset: preset.name.clone(),
        dtype: dtype_name(spec.dtype).to_string(),
        shape: spec.shape.clone(),
        cost: spec.cost,
        tokens: spec.tokens,
        status: "ok".into(),
        reason: None,
        extra: serde_json::Value::Null,
    };
    if spec.skip.is_none() {
        if let Some(avail) = device::available_memory(&ctx.device) {
            if spec.mem_bytes > avail / 10 * 9 {
                spec.skip = Some(format!(
                    "needs ~{:.1} GiB, {:.1} GiB available on {}",
                    spec.mem_bytes as f64 / (1u64 << 30) as f64,
                    avail as f64 / (1u64 << 30) as f64,
                    device::label(&ctx.device)
                ));
            }
        }
    }
    if let Some(why) = spec.skip.take() {
        // Only report skips for cases the command line selected.
        if mode_from_args() != Mode::List && matches_filter(&spec.full_id()) {
            eprintln!("SKIPPED {}: {why}", spec.full_id());
            rec.status = "skipped".into();
            rec.reason = Some(why);
            record(rec);
        }
        return;
    }

    g.throughput(match spec.tokens {
        Some(t) => Throughput::Elements(t.max(1)),
        None => Throughput::ElementsAndBytes {
            elements: spec.cost.flops.max(1),
            bytes: spec.cost.bytes.max(1),
        },
    });
    let device = ctx.device.clone();
    let mut build = spec.build.take();
    let mut runner: Option<Box<dyn Runner>> = None;
    let mut failure: Option<String> = None;
    let mut ran = false;
    let slow = slowdown_for(&spec.full_id());
    if let Some(f) = slow {
        eprintln!(
            "{SLOWDOWN_ENV}: {} is slowed down by {:.1} %",
            spec.full_id(),
            f * 100.0
        );
    }
    g.bench_function(spec.id.as_str(), |b| {
        ran = true;
        if runner.is_none() && failure.is_none() {
            if let Some(build) = build.take() {
                match build(&device).and_then(|mut r| {
                    // One untimed run so lazy initialisation (kernel loading, cuBLAS handles,
                    // first allocations) is never timed.
                    r.reset()?;
                    r.run()?;
                    device::sync(&device)?;
                    Ok(r)
                }) {
                    Ok(r) => runner = Some(r),
                    Err(e) => {
                        eprintln!(
                            "FAILED {}: set-up: {e:#}",
                            spec_full_id(spec.group, &spec.id)
                        );
                        failure = Some(format!("set-up: {e:#}"));
                    }
                }
            }
        }
        b.iter_custom(|iters| match (&mut runner, &failure) {
            (Some(r), None) => match time_iters(r.as_mut(), &device, iters) {
                Ok(d) => match slow {
                    Some(f) => {
                        let extra = d.mul_f64(f);
                        spin(extra);
                        d + extra
                    }
                    None => d,
                },
                Err(e) => {
                    eprintln!("FAILED {}: {e:#}", spec_full_id(spec.group, &spec.id));
                    failure = Some(format!("run: {e:#}"));
                    Duration::from_nanos(iters)
                }
            },
            // A failed case still has to hand Criterion a duration; the summary marks it
            // failed and `summary::write` removes its Criterion output.
            _ => Duration::from_nanos(iters),
        });
    });
    if !ran {
        return; // filtered out
    }
    if let Some(r) = &runner {
        rec.extra = r.extra();
    }
    if let Some(f) = failure {
        rec.status = "failed".into();
        rec.reason = Some(f);
    }
    record(rec);
    // Keep the summary current case by case: a run cut short keeps what it measured.
    flush(false);
}

fn spec_full_id(group: &str, id: &str) -> String {
    format!("{group}/{id}")
}

/// Times `iters` iterations. The device is synchronised before the clock starts (so no
/// earlier work is counted) and after the last iteration (so all of this work is).
pub fn time_iters(r: &mut dyn Runner, device: &Device, iters: u64) -> Result<Duration> {
    // Self-timing runners (end to end) measure their own part of each iteration.
    let mut own = Duration::ZERO;
    let mut self_timed = true;
    for i in 0..iters {
        match r.timed()? {
            Some(d) => own += d,
            None if i == 0 => {
                self_timed = false;
                break;
            }
            None => anyhow::bail!("runner stopped timing itself"),
        }
    }
    if self_timed {
        return Ok(own);
    }
    if r.needs_reset() {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            r.reset()?;
            device::sync(device)?;
            let t = Instant::now();
            r.run()?;
            device::sync(device)?;
            total += t.elapsed();
        }
        Ok(total)
    } else {
        device::sync(device)?;
        let t = Instant::now();
        for _ in 0..iters {
            r.run()?;
        }
        device::sync(device)?;
        Ok(t.elapsed())
    }
}

/// Whether Criterion's positional filter (a regex, or an exact id with `--exact`) selects
/// `full_id`. Used only to decide whether to report a skip; Criterion decides what runs.
fn matches_filter(full_id: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Criterion options that take a value.
    const WITH_VALUE: &[&str] = &[
        "--save-baseline",
        "-s",
        "--baseline",
        "-b",
        "--baseline-lenient",
        "--load-baseline",
        "--profile-time",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--plotting-backend",
        "--output-format",
        "--color",
        "-c",
        "--format",
    ];
    let exact = args.iter().any(|a| a == "--exact");
    let mut filter = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if WITH_VALUE.contains(&a.as_str()) {
            i += 2;
            continue;
        }
        if !a.starts_with('-') {
            filter = Some(a.clone());
        }
        i += 1;
    }
    match filter {
        None => true,
        Some(f) if exact => f == full_id,
        Some(f) => regex::Regex::new(&f)
            .map(|r| r.is_match(full_id))
            .unwrap_or(true),
    }
}

static CEILINGS: Lazy<Option<ceilings::Ceilings>> =
    Lazy::new(|| match ceilings::get_or_measure(&setup().device) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("mistral-rs-bench: could not measure device ceilings: {e:#}");
            None
        }
    });

/// Writes the suite's summary of the records so far (merged into the device's summary file);
/// `print` also prints the table.
fn flush(print: bool) {
    let s = setup();
    let recs = records();
    if recs.is_empty() {
        return;
    }
    let mode = mode_from_args();
    let ceil = if mode == Mode::Bench {
        CEILINGS.as_ref()
    } else {
        None
    };
    match summary::write(&s.device, s.profile, mode, &recs, ceil, print) {
        Ok(path) => {
            if print {
                eprintln!("mistral-rs-bench: summary written to {}", path.display())
            }
        }
        Err(e) => eprintln!("mistral-rs-bench: could not write the summary: {e:#}"),
    }
}

/// Ends a run: Criterion's own summary, then (after a measuring run) the suite's JSON
/// summary with roofline figures under `target/mistral-rs-bench/`.
pub fn finish(c: Criterion) {
    c.final_summary();
    flush(true);
}
