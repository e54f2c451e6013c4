//! The summary file, `summary-<device>.json` (or `-smoke` for `--list`/`--test` runs) under
//! the output folder: this run's cases merged case by case into what the file held, with
//! the derived figures recomputed. Failed cases' Criterion output is removed so no
//! placeholder timing survives.

use super::criterion::{self, read_estimates};
use super::derive::derive;
use super::roofline::roofline;
use super::schema::{CaseSummary, Record, RunInfo, Summary};
use crate::case::Status;
use crate::config::RunProfile;
use crate::device::{self, ceilings::Ceilings};
use crate::util::{build::BuildInfo, fmt::now_rfc3339, json, paths};
use anyhow::{Context, Result};
use candle_core::Device;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Whether a run measured (Criterion wrote estimates) or only listed or smoke-tested cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Measured,
    Smoke,
}

/// Builds this run's case summaries from the records and Criterion's output.
pub fn build_cases(
    device: &Device,
    index: &BTreeMap<String, PathBuf>,
    recs: &[Record],
    ceil: Option<&Ceilings>,
) -> Vec<CaseSummary> {
    let label = device::label(device);
    let name = device::describe(device);
    let llc = device::last_level_cache_bytes(device);
    let now = now_rfc3339();
    recs.iter()
        .map(|r| {
            let full = r.full_id();
            let est = if r.status == Status::Ok {
                index.get(&full).and_then(|d| read_estimates(d).ok())
            } else {
                None
            };
            let (gbps, gflops, pb, pf) = match est {
                Some(e) if e.median_ns > 0.0 => {
                    let f = roofline(r.cost.flops, r.cost.bytes, e.median_ns, ceil);
                    (Some(f.gbps), Some(f.gflops), f.pct_bw, f.pct_flop)
                }
                _ => (None, None, None, None),
            };
            CaseSummary {
                case: full,
                case_id: Some(r.id.clone()),
                group: r.id.group().to_string(),
                preset: r.preset.clone(),
                device: label.clone(),
                device_name: name.clone(),
                dtype: r.dtype.clone(),
                shape: r.shape.clone(),
                status: r.status,
                reason: r.reason.clone(),
                flops: r.cost.flops,
                bytes: r.cost.bytes,
                tokens: r.tokens,
                estimates: est,
                tokens_per_s: match (r.tokens, est) {
                    (Some(t), Some(e)) if e.median_ns > 0.0 => {
                        Some(t as f64 / (e.median_ns * 1e-9))
                    }
                    _ => None,
                },
                gbps,
                gflops,
                pct_bw_ceiling: pb,
                pct_flop_ceiling: pf,
                fits_in_cache: llc.map(|l| r.tokens.is_none() && r.cost.bytes <= l),
                measured_at: now.clone(),
                extra: r.extra.clone(),
                stand_in: r.stand_in.clone(),
                insitu: r.insitu.clone().map(|mut b| {
                    if let (Some(e), Some(t)) = (est, r.tokens) {
                        b.set_suite(e.median_ns * 1e-6 / t.max(1) as f64);
                    }
                    b
                }),
            }
        })
        .collect()
}

/// The summary file of a device label (`cpu`, `cuda0`, ...) in a folder:
/// `summary-<label>.json`.
pub fn summary_file(dir: &Path, label: &str) -> PathBuf {
    dir.join(format!("summary-{label}.json"))
}

/// What [`write`] wrote.
pub struct Written {
    pub path: PathBuf,
    /// This run's cases.
    pub cases: Vec<CaseSummary>,
    /// The whole summary file as written (merged with earlier runs).
    pub summary: Summary,
}

/// Writes this run's records into the device's summary file (merging with what it held,
/// case by case), and stamps the Criterion folder of each case in `stamp` (the cases
/// measured since the last write) with this binary's build: a Criterion folder collects
/// cases from many runs, so the build is recorded per case.
///
/// A summary file written by a build that ran other code paths is not merged into: it is
/// kept beside, as `summary-<device>.<its written_at>.json`, and a new one is started.
pub fn write(
    device: &Device,
    profile: RunProfile,
    run: &RunInfo,
    kind: RunKind,
    recs: &[Record],
    stamp: &[Record],
    ceil: Option<&Ceilings>,
) -> Result<Written> {
    // One walk of Criterion's folder per write (the harness writes after every case).
    let index = match kind {
        RunKind::Measured => criterion::index(&paths::criterion_dir()),
        RunKind::Smoke => BTreeMap::new(),
    };
    let cases = build_cases(device, &index, recs, ceil);
    let build = BuildInfo::current();
    for r in stamp.iter().filter(|r| r.status == Status::Ok) {
        if let Some(dir) = index.get(&r.full_id()) {
            json::write(&dir.join(criterion::BUILD_FILE), &build)?;
        }
    }
    if kind == RunKind::Measured {
        for c in cases.iter().filter(|c| c.status == Status::Failed) {
            if let Some(case_dir) = index.get(&c.case).and_then(|d| d.parent()) {
                let _ = std::fs::remove_dir_all(case_dir);
            }
        }
    }
    let dir = paths::out_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let suffix = match kind {
        RunKind::Measured => "",
        RunKind::Smoke => "-smoke",
    };
    let path = summary_file(&dir, &format!("{}{suffix}", device::label(device)));
    let mut merged: BTreeMap<String, CaseSummary> = BTreeMap::new();
    if let Ok(old) = Summary::load(&path) {
        match &old.build {
            Some(b) if !b.same_code_paths(&build) => {
                let aside = dir.join(format!(
                    "summary-{}{suffix}.{}.json",
                    device::label(device),
                    old.written_at.replace(':', "")
                ));
                std::fs::rename(&path, &aside)
                    .with_context(|| format!("cannot move {} aside", path.display()))?;
                eprintln!(
                    "mistral-rs-bench: {} was written by another build ({}); kept as {}",
                    path.display(),
                    b.differences(&build).join("; "),
                    aside.display()
                );
            }
            _ => {
                for c in old.cases {
                    merged.insert(c.case.clone(), c);
                }
            }
        }
    }
    for c in &cases {
        merged.insert(c.case.clone(), c.clone());
    }
    let all: Vec<CaseSummary> = merged.into_values().collect();
    let layers = preset_layers();
    let derived = derive(&all, &layers);
    let summary = Summary {
        device: device::label(device),
        device_name: device::describe(device),
        profile: serde_json::to_value(profile)?,
        mistralrs_version: crate::MISTRALRS_VERSION.into(),
        written_at: now_rfc3339(),
        ceilings: ceil.cloned(),
        llc_bytes: device::last_level_cache_bytes(device),
        cases: all,
        derived,
        build: Some(build),
        run: Some(run.clone()),
        peer_build: None,
        tool_runs: Vec::new(),
    };
    json::write(&path, &summary)?;
    Ok(Written {
        path,
        cases,
        summary,
    })
}

/// The layer count of every preset of the models file (for the derived slopes).
pub fn preset_layers() -> BTreeMap<String, usize> {
    crate::config::Models::load_default()
        .map(|m| m.presets.into_iter().map(|(k, p)| (k, p.layers)).collect())
        .unwrap_or_default()
}
