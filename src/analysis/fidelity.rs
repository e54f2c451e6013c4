//! Fidelity of the suite's clock on a GPU: the same work timed the suite's way (synchronise,
//! `Instant`, N iterations, synchronise) and with CUDA events recorded on candle's stream
//! around the same N iterations, alternating sample by sample in one process. Host-side work
//! (launch overhead, host copies) is in the first figure and not in the second, so the two
//! agree for GPU-bound cases and the gap measures host overhead for short ones.

use crate::case::{Ctx, Runner};
use crate::config::Preset;
use crate::parts;
use anyhow::{bail, Result};
use candle_core::Device;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct FidelityRow {
    pub case: String,
    pub iters_per_sample: u64,
    pub samples: usize,
    /// Suite clock (sync + Instant), median ns per iteration.
    pub suite_ns: f64,
    /// CUDA events on candle's stream, median ns per iteration.
    pub events_ns: f64,
    /// (suite − events) / events, in %.
    pub diff_pct: f64,
}

/// Median ns per iteration of both clocks for one runner.
#[allow(unused_variables)]
pub fn measure(
    r: &mut dyn Runner,
    device: &Device,
    iters: u64,
    samples: usize,
) -> Result<(f64, f64)> {
    #[cfg(feature = "cuda")]
    {
        use crate::run::timing::time_iters;
        use cudarc::driver::sys::CUevent_flags;
        let stream = device.as_cuda_device()?.cuda_stream();
        let (mut suite, mut events) = (Vec::new(), Vec::new());
        // warm-up
        time_iters(r, device, iters)?;
        for _ in 0..samples {
            suite.push(time_iters(r, device, iters)?.as_nanos() as f64 / iters as f64);
            crate::device::sync(device)?;
            let start = stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
            for _ in 0..iters {
                r.run()?;
            }
            let end = stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
            let ms = start.elapsed_ms(&end)?;
            events.push(ms as f64 * 1e6 / iters as f64);
        }
        Ok((
            crate::util::stats::median(&suite),
            crate::util::stats::median(&events),
        ))
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
    ]);
    for r in rows {
        t.push([
            r.case.clone(),
            crate::util::fmt::fmt_ns(r.suite_ns),
            crate::util::fmt::fmt_ns(r.events_ns),
            format!("{:+.2} %", r.diff_pct),
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
                let (suite_ns, events_ns) = measure(r.as_mut(), device, iters, samples)?;
                rows.push(FidelityRow {
                    case: id,
                    iters_per_sample: iters,
                    samples,
                    suite_ns,
                    events_ns,
                    diff_pct: 100.0 * (suite_ns - events_ns) / events_ns,
                });
            }
        }
    }
    Ok(rows)
}
