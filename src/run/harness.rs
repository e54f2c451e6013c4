//! Criterion integration: the run profile, every part of [`crate::parts::REGISTRY`] in one
//! bench binary, the timed loop with device synchronisation ([`super::timing`]), skipping,
//! failures, and the machine-readable summary written after every case.
//!
//! Each case's set-up happens once, lazily, when Criterion first selects it, followed by one
//! untimed run (kernel loading, first allocations); the timed loop only runs the work.

use super::args::{self, Mode};
use super::profiler::PprofProfiler;
use super::timing::{pilot, spin, time_iters};
use crate::case::{set, Build, CaseSet, Ctx, Runner, Spec, Status};
use crate::config::{dtype_name, Models, Preset, RunProfile};
use crate::device::{self, ceilings, insitu};
use crate::parts::{self, Part};
use crate::results::{tables, writer, Record, RunInfo};
use anyhow::{Context, Result};
use candle_core::Device;
use criterion::{Criterion, SamplingMode, Throughput};
use std::time::{Duration, Instant};

/// Test knob: `MISTRALRS_BENCH_SLOWDOWN=<regex>=<fraction>` makes every case whose id
/// matches take `fraction` longer (a busy wait inside the timed region, proportional to the
/// measured work), so the verdict of `compare` can be checked against a known slowdown.
pub const SLOWDOWN_ENV: &str = "MISTRALRS_BENCH_SLOWDOWN";

/// Test knob: `MISTRALRS_BENCH_EXTRA_WORK=<regex>=<fraction>` makes every case whose id
/// matches run `fraction` more of its own iterations inside each timed sample (the paired
/// runner's workers honour it). Unlike the busy wait of
/// [`SLOWDOWN_ENV`] it is deterministic work: the same extra instructions every time.
pub const EXTRA_WORK_ENV: &str = "MISTRALRS_BENCH_EXTRA_WORK";

/// The slowdown the test knob asks for `full_id`, if any.
pub fn slowdown_for(full_id: &str) -> Option<f64> {
    knob_for(SLOWDOWN_ENV, full_id)
}

/// The extra work [`EXTRA_WORK_ENV`] asks for `full_id`, if any.
pub fn extra_work_for(full_id: &str) -> Option<f64> {
    knob_for(EXTRA_WORK_ENV, full_id)
}

fn knob_for(env: &str, full_id: &str) -> Option<f64> {
    let v = std::env::var(env).ok()?;
    let (re, frac) = v.rsplit_once('=')?;
    let frac: f64 = frac.parse().ok()?;
    regex::Regex::new(re)
        .ok()?
        .is_match(full_id)
        .then_some(frac)
}

/// Everything a run needs, read once from the environment.
pub struct Setup {
    pub device: Device,
    pub presets: Vec<Preset>,
    pub profile: RunProfile,
}

impl Setup {
    /// Device, presets and profile from the environment; bad values are errors.
    pub fn from_env() -> Result<Setup> {
        let models = Models::load_default()?;
        Ok(Setup {
            presets: models.selected()?,
            device: device::from_env()?,
            profile: RunProfile::from_env()?,
        })
    }
}

/// Criterion configured with the run profile and the pprof profiler; command-line flags
/// (`--warm-up-time`, `--measurement-time`, `--sample-size`, ...) still override the profile.
pub fn criterion(p: RunProfile) -> Criterion {
    let c = Criterion::default()
        .warm_up_time(Duration::from_millis(p.warm_up_ms))
        .measurement_time(Duration::from_millis(p.measurement_ms))
        .sample_size(p.sample_size)
        .with_profiler(PprofProfiler::new(997));
    // Plots only with the full profile: drawing them cost about 3.2 s a case on the 2-core
    // VM (9 small_ops cases: 74 s with, 45 s without), a third of a default run.
    let c = match p {
        RunProfile::QUICK => c.without_plots().nresamples(10_000),
        RunProfile::FULL => c,
        _ => c.without_plots(),
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

/// The precision each component case samples for: the 95 % interval of its median within
/// ±1 % (nvbench's rule, on the median), within the profile's sample count and time cap.
pub const TARGET_PRECISION: f64 = 0.01;
/// The most samples a component case takes to reach [`TARGET_PRECISION`].
pub const MAX_SAMPLES: usize = 60;

/// The bench binary's whole run: every part of the registry, then the summary.
pub fn main() -> Result<()> {
    let setup = Setup::from_env()?;
    let mut c = criterion(setup.profile);
    let mut run = Run::new(setup)?;
    for part in parts::REGISTRY {
        run.part(&mut c, part)?;
    }
    c.final_summary();
    run.flush(true);
    Ok(())
}

/// Every case a part generates for the selected presets on the selected device, each with
/// its preset and context (nothing is built yet).
pub fn specs_of(setup: &Setup, part: &Part) -> Result<Vec<(Preset, Ctx, Spec)>> {
    let group: &'static str = part.group.into();
    let mut specs = Vec::new();
    for preset in &setup.presets {
        let dtype = device::compute_dtype(&setup.device, preset.dtype())?;
        let ctx = Ctx {
            device: setup.device.clone(),
            dtype,
        };
        for spec in (part.specs)(preset, &ctx)
            .with_context(|| format!("{group}: cases of preset `{}`", preset.name))?
        {
            specs.push((preset.clone(), ctx.clone(), spec));
        }
    }
    Ok(specs)
}

/// The records of one bench process and what writing the summary needs.
pub struct Run {
    setup: Setup,
    mode: Mode,
    args: Vec<String>,
    records: Vec<Record>,
    /// Records already written (their Criterion folders stamped with the build).
    written: usize,
    /// Measured (or read from cache) on first use, only in a measuring run.
    ceilings: Option<Option<ceilings::Ceilings>>,
    /// The case set this run measures.
    set: CaseSet,
    started: Instant,
}

impl Run {
    pub fn new(setup: Setup) -> Result<Self> {
        let mode = args::mode();
        let args: Vec<String> = std::env::args().skip(1).collect();
        let narrowed = mode != Mode::Bench || args::filter(&args).is_some();
        let set = CaseSet::for_run(setup.profile.name, narrowed)?;
        if mode == Mode::Bench {
            eprintln!(
                "mistral-rs-bench: case set `{set}` ({} profile)",
                setup.profile.name
            );
        }
        Ok(Run {
            setup,
            mode,
            args,
            records: Vec::new(),
            written: 0,
            ceilings: None,
            set,
            started: Instant::now(),
        })
    }

    /// Runs one pipeline part: the cases its generator makes for every selected preset.
    /// Component cases and end-to-end cases (whole requests) go to two Criterion groups of
    /// the part's name, each sampled its way.
    pub fn part(&mut self, c: &mut Criterion, part: &Part) -> Result<()> {
        let group: &'static str = part.group.into();
        let specs = specs_of(&self.setup, part)?;
        // Only the run's set: a case outside it is not generated for Criterion at all.
        let ids: Vec<_> = specs.iter().map(|(_, _, s)| s.id.clone()).collect();
        let sets = set::assign(&ids);
        let specs = specs
            .into_iter()
            .zip(sets)
            .filter(|(_, smallest)| self.set.holds(*smallest))
            .map(|(s, _)| s);
        let (e2e, comp): (Vec<_>, Vec<_>) = specs.partition(|(_, _, s)| s.is_end_to_end());
        for (batch, opts) in [(comp, GroupOpts::default()), (e2e, GroupOpts::end_to_end())] {
            if batch.is_empty() {
                continue;
            }
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
            for (preset, ctx, spec) in batch {
                self.bench_spec(&mut g, &preset, &ctx, spec, opts);
            }
            g.finish();
        }
        // Write what this group measured now, so a run cut short keeps its finished groups.
        self.flush(false);
        Ok(())
    }

    fn bench_spec(
        &mut self,
        g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        preset: &Preset,
        ctx: &Ctx,
        mut spec: Spec,
        opts: GroupOpts,
    ) {
        let full_id = spec.full_id();
        let mut rec = Record {
            id: spec.id.clone(),
            preset: preset.name.clone(),
            dtype: dtype_name(spec.dtype).to_string(),
            shape: spec.shape.clone(),
            cost: spec.cost,
            tokens: spec.tokens,
            status: Status::Ok,
            reason: None,
            extra: serde_json::Value::Null,
            stand_in: spec.stand_in.clone(),
            insitu: None,
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
            if self.mode != Mode::List && args::selects(&self.args, &full_id) {
                eprintln!("SKIPPED {full_id}: {why}");
                rec.status = Status::Skipped;
                rec.reason = Some(why);
                self.records.push(rec);
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
        let slow = slowdown_for(&full_id);
        if let Some(f) = slow {
            eprintln!(
                "{SLOWDOWN_ENV}: {full_id} is slowed down by {:.1} %",
                f * 100.0
            );
        }
        let set_up = |build: Build, device: &Device| {
            build(device).and_then(|mut r| {
                // One untimed run so lazy initialisation (kernel loading, cuBLAS handles,
                // first allocations) is never timed.
                r.reset()?;
                r.run()?;
                device::sync(device)?;
                Ok(r)
            })
        };
        // A measured component case is set up before Criterion sees it, and a short pilot
        // sizes its sample count to its noise (more samples, within the cap, until the
        // median's 95 % interval is expected within ±1 %).
        let adaptive = self.mode == Mode::Bench
            && !spec.is_end_to_end()
            && args::selects(&self.args, &full_id);
        let mut sampling: Option<serde_json::Value> = None;
        if adaptive {
            if let Some(b) = build.take() {
                match set_up(b, &device)
                    .and_then(|mut r| pilot(r.as_mut(), &device).map(|p| (r, p)))
                {
                    Ok((r, p)) => {
                        let floor = opts.sample_size.unwrap_or(self.setup.profile.sample_size);
                        let wanted =
                            crate::util::stats::samples_for_precision(p.cv, TARGET_PRECISION);
                        // Criterion's linear sampling runs 1+2+...+n batches: the cap on
                        // time bounds n.
                        let cap = Duration::from_millis(self.setup.profile.measurement_ms);
                        let by_time = ((2.0 * cap.as_secs_f64()
                            / p.per_iter.as_secs_f64().max(1e-9))
                        .sqrt()) as usize;
                        let n = wanted.min(MAX_SAMPLES).min(by_time).max(floor).max(10);
                        g.sample_size(n);
                        sampling = Some(serde_json::json!({
                            "pilot_cv": p.cv,
                            "pilot_ns_per_iter": p.per_iter.as_nanos() as u64,
                            "samples_wanted": wanted,
                            "samples": n,
                        }));
                        runner = Some(r);
                    }
                    Err(e) => {
                        eprintln!("FAILED {full_id}: set-up: {e:#}");
                        failure = Some(format!("set-up: {e:#}"));
                    }
                }
            }
        }
        // (iterations, time) of every call Criterion made; the last `samples` are its samples.
        let mut calls: Vec<(u64, Duration)> = Vec::new();
        g.bench_function(spec.id.local(), |b| {
            ran = true;
            if runner.is_none() && failure.is_none() {
                if let Some(build) = build.take() {
                    match set_up(build, &device) {
                        Ok(r) => runner = Some(r),
                        Err(e) => {
                            eprintln!("FAILED {full_id}: set-up: {e:#}");
                            failure = Some(format!("set-up: {e:#}"));
                        }
                    }
                }
            }
            b.iter_custom(|iters| match (&mut runner, &failure) {
                (Some(r), None) => match time_iters(r.as_mut(), &device, iters) {
                    Ok(d) => {
                        let d = match slow {
                            Some(f) => {
                                let extra = d.mul_f64(f);
                                spin(extra);
                                d + extra
                            }
                            None => d,
                        };
                        calls.push((iters, d));
                        d
                    }
                    Err(e) => {
                        eprintln!("FAILED {full_id}: {e:#}");
                        failure = Some(format!("run: {e:#}"));
                        Duration::from_nanos(iters)
                    }
                },
                // A failed case still has to hand Criterion a duration; the summary marks
                // it failed and the writer removes its Criterion output.
                _ => Duration::from_nanos(iters),
            });
        });
        // Reset for the next case of the group (the profile's, or the group's override).
        g.sample_size(opts.sample_size.unwrap_or(self.setup.profile.sample_size));
        if !ran {
            return; // filtered out
        }
        if let (Some(r), None) = (&mut runner, &failure) {
            if insitu::enabled() && spec.tokens.is_some() {
                let dump = std::env::var_os(insitu::DUMP_ENV).map(|d| {
                    std::path::PathBuf::from(d).join(format!("{}.json", full_id.replace('/', "__")))
                });
                match r.insitu(dump.as_deref()) {
                    Ok(b) => rec.insitu = b,
                    Err(e) => {
                        eprintln!("mistral-rs-bench: in-situ attribution of {full_id}: {e:#}")
                    }
                }
            }
        }
        if let Some(r) = &runner {
            rec.extra = r.extra();
            if self.mode == Mode::Bench {
                let n = sampling
                    .as_ref()
                    .and_then(|v| v["samples"].as_u64())
                    .map(|n| n as usize)
                    .or(opts.sample_size)
                    .unwrap_or(self.setup.profile.sample_size);
                let per: Vec<f64> = calls[calls.len().saturating_sub(n)..]
                    .iter()
                    .map(|(i, d)| d.as_secs_f64() / (*i).max(1) as f64)
                    .collect();
                let mut v = sampling
                    .take()
                    .unwrap_or_else(|| serde_json::json!({"samples": n}));
                let precision = crate::util::stats::median_precision(&per);
                v["median_ci95_halfwidth_pct"] = (precision * 100.0).into();
                v["target_pct"] = (TARGET_PRECISION * 100.0).into();
                v["target_met"] = (precision <= TARGET_PRECISION).into();
                if !rec.extra.is_object() {
                    rec.extra = serde_json::json!({});
                }
                rec.extra["sampling"] = v;
                // The CPU threads the case ran on (rayon's pool: candle and the engine),
                // so a peer's figure can be set beside one of equal threads.
                rec.extra["threads"] = rayon::current_num_threads().into();
            }
            if let (Some(d), None) = (super::timing::idle_between(), spec.tokens) {
                // Timed cold (the pool asleep): say so beside the figure.
                if !rec.extra.is_object() {
                    rec.extra = serde_json::json!({});
                }
                rec.extra["idle_before_each_iteration_us"] = (d.as_micros() as u64).into();
            }
        }
        if let Some(f) = failure {
            rec.status = Status::Failed;
            rec.reason = Some(f);
        }
        self.records.push(rec);
        // Keep the summary current case by case: a run cut short keeps what it measured.
        self.flush(false);
    }

    /// The device's ceilings (measuring runs only; measured once, then cached on disk).
    fn ceilings(&mut self) -> Option<&ceilings::Ceilings> {
        if self.mode != Mode::Bench {
            return None;
        }
        if self.ceilings.is_none() {
            self.ceilings = Some(match ceilings::get_or_measure(&self.setup.device) {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!("mistral-rs-bench: could not measure device ceilings: {e:#}");
                    None
                }
            });
        }
        self.ceilings.as_ref().and_then(Option::as_ref)
    }

    /// Writes the suite's summary of the records so far (merged into the device's summary
    /// file); `print` also prints this run's table (measuring runs).
    pub fn flush(&mut self, print: bool) {
        if self.records.is_empty() {
            return;
        }
        let kind = match self.mode {
            Mode::Bench => writer::RunKind::Measured,
            _ => writer::RunKind::Smoke,
        };
        let ceil = self.ceilings().cloned();
        let run = RunInfo {
            set: self.set,
            duration_s: self.started.elapsed().as_secs_f64(),
            finished: print,
        };
        let result = writer::write(
            &self.setup.device,
            self.setup.profile,
            &run,
            kind,
            &self.records,
            &self.records[self.written..],
            ceil.as_ref(),
        );
        if result.is_ok() {
            self.written = self.records.len();
        }
        match result {
            Ok(w) if print => {
                if kind == writer::RunKind::Measured {
                    print!("{}", tables::cases_markdown(&w.cases, ceil.as_ref()));
                    print!("{}", tables::insitu_markdown(&w.cases));
                    let slopes = tables::slopes_table(&w.summary.derived);
                    if !slopes.is_empty() {
                        print!("\n{}", slopes.markdown());
                    }
                }
                eprintln!("mistral-rs-bench: summary written to {}", w.path.display());
            }
            Ok(_) => {}
            Err(e) => eprintln!("mistral-rs-bench: could not write the summary: {e:#}"),
        }
    }
}
