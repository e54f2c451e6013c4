//! Fidelity of the suite's clock on a GPU: the same work timed the suite's way (synchronise,
//! `Instant`, N iterations, synchronise) and with CUDA events recorded on candle's stream
//! around the same N iterations, in one process. Host-side work (launch overhead, host
//! copies) is in the first figure and not in the second, so the two agree for GPU-bound
//! cases and the gap measures host overhead for short ones.
//!
//! How the two clocks are kept comparable:
//! - the two events are created once, before any sample: `CudaStream::record_event` would
//!   create the end event (a driver call on the host) after the N launches, and for a
//!   launch-bound kernel the device waits for the host, so that call would land inside the
//!   events' interval (the H100's −4.4 % on `rmsnorm/t1` in issue 14 had this bias);
//! - samples come in pairs, alternately suite-first and events-first (ABBA), so a drift of
//!   the host's or the card's clock over the run falls on both clocks alike;
//! - the difference is the median of the pairs' ratios, with its distribution-free 95 %
//!   interval: a difference inside the interval's width is the two clocks' noise, not a
//!   bias of the suite's clock.

use crate::case::{Ctx, Runner};
use crate::config::Preset;
use crate::parts;
use crate::util::stats;
use anyhow::{bail, Result};
use candle_core::Device;
use serde::Serialize;

/// The tolerance the suite's clock is held to against CUDA events, in %.
pub const TOLERANCE_PCT: f64 = 2.0;

#[derive(Debug, Clone, Serialize)]
pub struct FidelityRow {
    pub case: String,
    pub iters_per_sample: u64,
    /// Samples per clock (= pairs).
    pub samples: usize,
    /// Suite clock (sync + Instant), median ns per iteration.
    pub suite_ns: f64,
    /// CUDA events on candle's stream, median ns per iteration.
    pub events_ns: f64,
    /// Median over the pairs of suite / events − 1, in %.
    pub diff_pct: f64,
    /// The 95 % interval of that median, in %.
    pub diff_lo_pct: f64,
    pub diff_hi_pct: f64,
    /// Each clock's coefficient of variation over its samples, in %.
    pub suite_cv_pct: f64,
    pub events_cv_pct: f64,
    /// |diff| ≤ [`TOLERANCE_PCT`], or the interval holds a difference within it.
    pub within_tolerance: bool,
}

impl FidelityRow {
    /// The row of one case from its paired samples (ns per iteration; `suite[i]` and
    /// `events[i]` were taken back to back).
    pub fn from_pairs(case: String, iters: u64, suite: &[f64], events: &[f64]) -> Result<Self> {
        if suite.len() != events.len() || suite.is_empty() {
            bail!(
                "{case}: {} suite and {} events samples (need equal, non-zero counts)",
                suite.len(),
                events.len()
            );
        }
        let ratios: Vec<f64> = suite.iter().zip(events).map(|(s, e)| s / e).collect();
        let (lo, hi) = stats::median_ci(&ratios, 0.95);
        let pct = |r: f64| 100.0 * (r - 1.0);
        let cv = |v: &[f64]| 100.0 * stats::Summary::of(v).cv;
        let (diff, lo, hi) = (pct(stats::median(&ratios)), pct(lo), pct(hi));
        Ok(FidelityRow {
            case,
            iters_per_sample: iters,
            samples: suite.len(),
            suite_ns: stats::median(suite),
            events_ns: stats::median(events),
            diff_pct: diff,
            diff_lo_pct: lo,
            diff_hi_pct: hi,
            suite_cv_pct: cv(suite),
            events_cv_pct: cv(events),
            within_tolerance: diff.abs() <= TOLERANCE_PCT
                || (lo <= TOLERANCE_PCT && hi >= -TOLERANCE_PCT),
        })
    }
}

/// Paired samples (ns per iteration) of both clocks for one runner: (suite, events).
#[allow(unused_variables)]
pub fn measure(
    r: &mut dyn Runner,
    device: &Device,
    iters: u64,
    samples: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    #[cfg(feature = "cuda")]
    {
        use crate::run::timing::time_iters;
        use cudarc::driver::sys::CUevent_flags;
        let stream = device.as_cuda_device()?.cuda_stream();
        let ctx = stream.context();
        // created once: no driver call of theirs inside a timed interval
        let start = ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
        let end = ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
        let events_sample = |r: &mut dyn Runner| -> Result<f64> {
            crate::device::sync(device)?;
            start.record(&stream)?;
            for _ in 0..iters {
                r.run()?;
            }
            end.record(&stream)?;
            Ok(start.elapsed_ms(&end)? as f64 * 1e6 / iters as f64)
        };
        let suite_sample = |r: &mut dyn Runner| -> Result<f64> {
            Ok(time_iters(r, device, iters)?.as_nanos() as f64 / iters as f64)
        };
        // warm-up of both
        suite_sample(r)?;
        events_sample(r)?;
        let (mut suite, mut events) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
        for i in 0..samples {
            if i % 2 == 0 {
                suite.push(suite_sample(r)?);
                events.push(events_sample(r)?);
            } else {
                events.push(events_sample(r)?);
                suite.push(suite_sample(r)?);
            }
        }
        Ok((suite, events))
    }
    #[cfg(not(feature = "cuda"))]
    bail!("CUDA events need a `--features cuda` build")
}

/// The fidelity rows as a table.
pub fn table(rows: &[FidelityRow]) -> crate::util::table::Table {
    let mut t = crate::util::table::Table::new(&[
        "case",
        "suite (sync + Instant)>",
        "CUDA events>",
        "difference>",
        "95 % interval>",
        "CV suite / events>",
        "pairs>",
        "within ±2 %",
    ]);
    for r in rows {
        t.push([
            r.case.clone(),
            crate::util::fmt::fmt_ns(r.suite_ns),
            crate::util::fmt::fmt_ns(r.events_ns),
            format!("{:+.2} %", r.diff_pct),
            format!("[{:+.2}, {:+.2}] %", r.diff_lo_pct, r.diff_hi_pct),
            format!("{:.1} / {:.1} %", r.suite_cv_pct, r.events_cv_pct),
            format!("{} × {}", r.samples, r.iters_per_sample),
            (if r.within_tolerance { "yes" } else { "no" }).to_string(),
        ]);
    }
    t
}

/// Runs the fidelity check for every component case whose id contains one of `filters`.
pub fn run(
    presets: &[Preset],
    device: &Device,
    filters: &[String],
    iters: u64,
    samples: usize,
) -> Result<Vec<FidelityRow>> {
    if !device.is_cuda() {
        bail!("the fidelity check compares against CUDA events: it needs a CUDA device");
    }
    let mut rows = Vec::new();
    for p in presets {
        let ctx = Ctx {
            device: device.clone(),
            dtype: crate::device::compute_dtype(device, p.dtype())?,
        };
        for part in parts::components() {
            for mut spec in (part.specs)(p, &ctx)? {
                let id = spec.full_id();
                if !filters.iter().any(|f| id.contains(f.as_str())) || spec.skip.is_some() {
                    continue;
                }
                let build = spec.build.take().expect("fresh spec");
                let mut r = build(device)?;
                let (suite, events) = measure(r.as_mut(), device, iters, samples)?;
                rows.push(FidelityRow::from_pairs(id, iters, &suite, &events)?);
            }
        }
    }
    Ok(rows)
}
