//! Criterion's own files: `estimates.json` and `sample.json` of a case's `new/` folder (or a
//! saved baseline's copy of it), and the index of every case under a folder by the
//! `benchmark.json` Criterion writes beside them.

use super::schema::Estimates;
use crate::util::json;
use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The build record the summary writer puts into each measured case's Criterion folder
/// (`<case>/new/`), so every result folder (a run's, a round's, a saved baseline's) says
/// how each of its cases was built.
pub const BUILD_FILE: &str = "mistral-rs-bench-build.json";

#[derive(Deserialize)]
struct CritEstimate {
    point_estimate: f64,
    confidence_interval: CritCi,
}
#[derive(Deserialize)]
struct CritCi {
    lower_bound: f64,
    upper_bound: f64,
}
#[derive(Deserialize)]
struct CritEstimates {
    mean: CritEstimate,
    median: CritEstimate,
    median_abs_dev: CritEstimate,
    std_dev: CritEstimate,
}
#[derive(Deserialize)]
struct CritBenchmark {
    full_id: String,
}
#[derive(Deserialize)]
struct CritSample {
    iters: Vec<f64>,
    times: Vec<f64>,
}

/// Reads Criterion's `estimates.json` (a case's `new/` or a saved baseline's folder).
pub fn read_estimates(dir: &Path) -> Result<Estimates> {
    let e: CritEstimates = json::read(&dir.join("estimates.json"), "Criterion estimates")?;
    Ok(Estimates {
        median_ns: e.median.point_estimate,
        median_lo_ns: e.median.confidence_interval.lower_bound,
        median_hi_ns: e.median.confidence_interval.upper_bound,
        mad_ns: e.median_abs_dev.point_estimate,
        mean_ns: e.mean.point_estimate,
        std_dev_ns: e.std_dev.point_estimate,
    })
}

/// Per-iteration times (ns) of one case, from Criterion's `sample.json`.
pub fn read_samples(dir: &Path) -> Result<Vec<f64>> {
    let path = dir.join("sample.json");
    let s: CritSample = json::read(&path, "a Criterion sample file")?;
    if s.iters.len() != s.times.len() || s.iters.is_empty() {
        bail!(
            "{}: iters and times differ in length or are empty",
            path.display()
        );
    }
    s.iters
        .iter()
        .zip(&s.times)
        .map(|(i, t)| {
            if *i > 0.0 && t.is_finite() && *t >= 0.0 {
                Ok(t / i)
            } else {
                Err(anyhow!(
                    "{}: bad sample (iters {i}, time {t})",
                    path.display()
                ))
            }
        })
        .collect()
}

/// Every result folder of each case under `root` (several when `root` holds several runs,
/// e.g. the alternating rounds of `scripts/bench-pr.sh`), keyed by Criterion's full id.
pub fn index_all(root: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
    {
        if entry.file_name() != "benchmark.json" {
            continue;
        }
        let dir = entry
            .path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if dir.file_name().and_then(|n| n.to_str()) != Some("new") {
            continue;
        }
        if let Ok(b) = json::read::<CritBenchmark>(entry.path(), "a Criterion benchmark file") {
            out.entry(b.full_id).or_default().push(dir);
        }
    }
    out
}

/// Maps Criterion full ids (`group/case`) to their result folders (`…/<case>/new`) under
/// `root` (the last folder in name order when a case appears several times).
pub fn index(root: &Path) -> BTreeMap<String, PathBuf> {
    index_all(root)
        .into_iter()
        .filter_map(|(id, mut dirs)| dirs.pop().map(|d| (id, d)))
        .collect()
}
