//! The in-situ breakdowns of a summary as a stacked-bar SVG: one bar per attributed case,
//! one segment per part, as % of the engine thread's wall time (the label gives the time
//! per unit, so cases of different units share one chart).

use super::plot::stacked_bars;
use crate::device::insitu::Part;
use crate::results::CaseSummary;
use anyhow::{bail, Result};
use std::path::Path;
use strum::IntoEnumIterator;

/// Writes the chart of the cases that have a breakdown; fails when none has.
pub fn plot(cases: &[CaseSummary], path: &Path) -> Result<()> {
    let with: Vec<&CaseSummary> = cases.iter().filter(|c| c.insitu.is_some()).collect();
    if with.is_empty() {
        bail!(
            "no case of the summary has an in-situ breakdown (run with MISTRALRS_BENCH_INSITU=1)"
        );
    }
    // Parts in their enum order (work first, idle and unassigned last), only those present.
    let parts: Vec<Part> = Part::iter()
        .filter(|p| {
            with.iter()
                .any(|c| c.insitu.as_ref().is_some_and(|b| b.part(*p).is_some()))
        })
        .collect();
    let labels: Vec<String> = with
        .iter()
        .map(|c| {
            let b = c.insitu.as_ref().expect("filtered");
            let short = c.case.splitn(3, '/').nth(2).unwrap_or(&c.case);
            format!("{short} ({:.1} ms/{})", b.per_unit_ms, b.unit)
        })
        .collect();
    let values: Vec<Vec<f64>> = with
        .iter()
        .map(|c| {
            let b = c.insitu.as_ref().expect("filtered");
            parts
                .iter()
                .map(|p| b.part(*p).map(|s| s.wall_share * 100.0).unwrap_or(0.0))
                .collect()
        })
        .collect();
    let engine = with[0]
        .insitu
        .as_ref()
        .map(|b| b.engine.clone())
        .unwrap_or_default();
    stacked_bars(
        path,
        &format!(
            "{engine} in situ: wall time by part ({})",
            with[0].device_name
        ),
        "% of the engine thread's wall time",
        &parts.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        &labels,
        &values,
    )
}
