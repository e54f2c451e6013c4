//! The suite's result schema: one [`Record`] per case of this process, and the summary file
//! (`summary-<device>.json`): one [`CaseSummary`] per case with median and spread (from
//! Criterion's own estimates), cost, achieved GB/s and FLOP/s, and their share of the
//! device's measured ceilings. Fields added later carry `#[serde(default)]`, so summaries
//! written before them (the committed baselines) still load.

use crate::case::{CaseId, Cost, Status};
use crate::device::ceilings::Ceilings;
use crate::device::insitu::Breakdown;
use crate::util::{build::BuildInfo, json};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Outcome of one case in this process's run.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub id: CaseId,
    pub preset: String,
    pub dtype: String,
    pub shape: String,
    pub cost: Cost,
    /// Tokens per iteration (end-to-end cases).
    pub tokens: Option<u64>,
    pub status: Status,
    pub reason: Option<String>,
    pub extra: serde_json::Value,
    /// Why the case is a stand-in (not the path the engine runs here), if it is one.
    pub stand_in: Option<String>,
    /// The engine's own run split by part (end-to-end cases run with `MISTRALRS_BENCH_INSITU`).
    pub insitu: Option<Breakdown>,
}

impl Record {
    pub fn full_id(&self) -> String {
        self.id.to_string()
    }
}

/// Criterion's estimates for one case, in nanoseconds per iteration.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Estimates {
    pub median_ns: f64,
    /// 95 % confidence interval of the median.
    pub median_lo_ns: f64,
    pub median_hi_ns: f64,
    /// Median absolute deviation of the samples.
    pub mad_ns: f64,
    pub mean_ns: f64,
    pub std_dev_ns: f64,
}

/// One case of a summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseSummary {
    /// `group/case`, Criterion's full id.
    pub case: String,
    /// The id's typed fields (group, subject, phase, variant, size, ...). Summaries written
    /// before this field get it from `case` when loaded ([`Summary::load`]).
    #[serde(default)]
    pub case_id: Option<CaseId>,
    pub group: String,
    pub preset: String,
    pub device: String,
    pub device_name: String,
    pub dtype: String,
    pub shape: String,
    pub status: Status,
    pub reason: Option<String>,
    pub flops: u64,
    pub bytes: u64,
    /// Tokens per iteration (end-to-end cases).
    #[serde(default)]
    pub tokens: Option<u64>,
    pub estimates: Option<Estimates>,
    /// Tokens per second from `tokens` and the median (end-to-end cases).
    #[serde(default)]
    pub tokens_per_s: Option<f64>,
    /// Achieved bandwidth, GB/s (10⁹ B/s), from `bytes` and the median.
    pub gbps: Option<f64>,
    /// Achieved rate, GFLOP/s, from `flops` and the median.
    pub gflops: Option<f64>,
    /// `gbps` as a share of the measured copy bandwidth, in %.
    pub pct_bw_ceiling: Option<f64>,
    /// `gflops` as a share of the measured matmul rate, in %.
    pub pct_flop_ceiling: Option<f64>,
    /// The case's bytes fit in the last-level cache: repeated iterations run from cache,
    /// so `pct_bw_ceiling` (against a DRAM copy) can exceed 100 % without a bug.
    #[serde(default)]
    pub fits_in_cache: Option<bool>,
    /// When this case was measured (summaries merge runs case by case).
    #[serde(default)]
    pub measured_at: String,
    pub extra: serde_json::Value,
    /// Why the case is a stand-in: the engine runs another path on this device and dtype
    /// (a reference, never summed into a budget as the engine's cost). None: it runs what
    /// the engine runs, or the summary predates this field.
    #[serde(default)]
    pub stand_in: Option<String>,
    /// The engine's own run split by part (`crate::device::insitu`), when it was attributed;
    /// its `vs_suite_pct` compares its time per unit with this case's median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insitu: Option<Breakdown>,
}

impl CaseSummary {
    /// The typed id (stored, or parsed from `case`; None for an id the suite does not know).
    pub fn id(&self) -> Option<CaseId> {
        self.case_id.clone().or_else(|| self.case.parse().ok())
    }

    /// Measured (status ok, with estimates).
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// Median ns per iteration of a measured case.
    pub fn median_ns(&self) -> Option<f64> {
        self.estimates.map(|e| e.median_ns).filter(|m| *m > 0.0)
    }
}

/// A whole summary file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub device: String,
    pub device_name: String,
    /// The run profile (warm-up, measurement time, samples).
    pub profile: serde_json::Value,
    pub mistralrs_version: String,
    pub written_at: String,
    pub ceilings: Option<Ceilings>,
    /// Last-level cache size (CPU), bytes.
    #[serde(default)]
    pub llc_bytes: Option<u64>,
    pub cases: Vec<CaseSummary>,
    /// Figures derived from several cases (the engine's context slope, ...).
    #[serde(default)]
    pub derived: serde_json::Value,
    /// How the binary that measured these cases was built (rustflags, target features).
    #[serde(default)]
    pub build: Option<BuildInfo>,
    /// The run that wrote the summary last: its case set and how long it had run.
    #[serde(default)]
    pub run: Option<RunInfo>,
    /// How a peer that is not this crate was built (llama.cpp: its CMake flags, compiler,
    /// commit), as its runner recorded it; the peers report prints it beside `build`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_build: Option<serde_json::Value>,
    /// A peer tool's own output, kept beside the cases (llama-bench's JSON records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_runs: Vec<ToolRun>,
}

/// One run of a peer's own benchmark tool: the command and its records as the tool wrote
/// them (llama-bench `-o json`; test-backend-ops' perf lines, parsed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolRun {
    pub tool: String,
    pub command: String,
    pub records: Vec<serde_json::Value>,
}

/// The run that wrote a summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// The case set it measured (`quick`, `default`, `full`).
    pub set: crate::case::CaseSet,
    /// Seconds from the bench process's start (after the build) to this write.
    pub duration_s: f64,
    /// Whether the run had finished (the last write) or was still going.
    pub finished: bool,
}

impl Summary {
    /// Reads a summary file; cases written without typed ids get them from their `case`.
    pub fn load(path: &Path) -> Result<Summary> {
        let mut s: Summary = json::read(path, "a summary file")?;
        for c in &mut s.cases {
            if c.case_id.is_none() {
                c.case_id = c.case.parse().ok();
            }
        }
        Ok(s)
    }
}
