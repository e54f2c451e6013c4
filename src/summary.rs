//! The machine-readable summary of a run: one JSON object per case with median and spread
//! (from Criterion's own estimates), cost, achieved GB/s and FLOP/s, and their share of the
//! device's measured ceilings. Written to `target/mistral-rs-bench/summary-<device>.json`.

use crate::ceilings::Ceilings;
use crate::harness::{Mode, Record, RunProfile};
use crate::{config, device};
use anyhow::{Context, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use statrs::statistics::{Data, OrderStatistics};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Cargo's target directory as Criterion finds it (`CARGO_TARGET_DIR`, else `./target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| config::crate_root().join("target"))
}

/// Where Criterion writes its results (`CRITERION_HOME`, else `<target>/criterion`).
pub fn criterion_dir() -> PathBuf {
    std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("criterion"))
}

/// Where the suite writes its summaries and cached ceilings: `MISTRALRS_BENCH_OUT`, else
/// `<target>/mistral-rs-bench` (a fresh folder gives a summary of one run only).
pub fn out_dir() -> PathBuf {
    std::env::var_os("MISTRALRS_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("mistral-rs-bench"))
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Median of a sample (statrs).
pub fn median(v: &mut [f64]) -> f64 {
    Data::new(v.to_vec()).median()
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

/// Reads Criterion's `estimates.json` (a case's `new/` or a saved baseline's folder).
pub fn read_estimates(dir: &Path) -> Result<Estimates> {
    let path = dir.join("estimates.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let e: CritEstimates = serde_json::from_str(&text)
        .with_context(|| format!("{}: not Criterion estimates", path.display()))?;
    Ok(Estimates {
        median_ns: e.median.point_estimate,
        median_lo_ns: e.median.confidence_interval.lower_bound,
        median_hi_ns: e.median.confidence_interval.upper_bound,
        mad_ns: e.median_abs_dev.point_estimate,
        mean_ns: e.mean.point_estimate,
        std_dev_ns: e.std_dev.point_estimate,
    })
}

/// Every result folder of each case under `root` (several when `root` holds several runs,
/// e.g. the alternating rounds of `scripts/bench-pr.sh`).
pub fn index_criterion_all(root: &Path) -> BTreeMap<String, Vec<PathBuf>> {
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
        if let Ok(text) = std::fs::read_to_string(entry.path()) {
            if let Ok(b) = serde_json::from_str::<CritBenchmark>(&text) {
                out.entry(b.full_id).or_default().push(dir);
            }
        }
    }
    out
}

/// Maps Criterion full ids (`group/case`) to their result folders (`…/<case>/new`) under
/// `root`, from the `benchmark.json` Criterion writes beside each result (the last folder in
/// name order when a case appears several times).
pub fn index_criterion(root: &Path) -> BTreeMap<String, PathBuf> {
    index_criterion_all(root)
        .into_iter()
        .filter_map(|(id, mut dirs)| dirs.pop().map(|d| (id, d)))
        .collect()
}

/// One case of a summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseSummary {
    /// `group/case`, Criterion's full id.
    pub case: String,
    pub group: String,
    pub preset: String,
    pub device: String,
    pub device_name: String,
    pub dtype: String,
    pub shape: String,
    /// `ok`, `skipped` or `failed`.
    pub status: String,
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
}

/// Decode ms/token of a `generation/.../decode/tg128/depthD` case.
fn ms_per_token(c: &CaseSummary) -> Option<f64> {
    let e = c.estimates?;
    let t = c.tokens? as f64;
    Some(e.median_ns / 1e6 / t)
}

/// The engine's context slope per model: decode ms/token at each depth, and
/// `(ms/token at the deepest depth − at depth 0) / depth × 1000` (ms per 1k tokens of
/// context), beside the same slope from the components (naive attention decode, times
/// layers) for the preset's shapes.
pub fn derive(cases: &[CaseSummary], layers: &BTreeMap<String, usize>) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    let mut by_model: BTreeMap<String, Vec<(usize, f64, String)>> = BTreeMap::new();
    for c in cases
        .iter()
        .filter(|c| c.group == "generation" && c.status == "ok")
    {
        let Some(i) = c.case.find("/decode/tg") else {
            continue;
        };
        let Some(d) = c
            .case
            .rsplit("/depth")
            .next()
            .and_then(|d| d.parse::<usize>().ok())
        else {
            continue;
        };
        if let Some(ms) = ms_per_token(c) {
            let model = c.case[..i].trim_start_matches("generation/").to_string();
            by_model
                .entry(model)
                .or_default()
                .push((d, ms, c.preset.clone()));
        }
    }
    for (model, mut pts) in by_model {
        pts.sort_by_key(|p| p.0);
        let preset = pts[0].2.clone();
        let (d0, ms0) = (pts[0].0, pts[0].1);
        let (d1, ms1) = (pts[pts.len() - 1].0, pts[pts.len() - 1].1);
        let engine_slope = (d1 > d0).then(|| (ms1 - ms0) / (d1 - d0) as f64 * 1000.0);
        // Components: attention decode medians at two contexts, per layer, for the path the
        // engine runs end to end here (paged on a GPU, where the e2e engine uses paged
        // attention; naive on the CPU, the nearest public stand-in for its private kernel).
        let path = if cases.iter().any(|c| c.device != "cpu") {
            "paged"
        } else {
            "naive"
        };
        let needle = format!("/decode/{path}/ctx");
        let attn: BTreeMap<usize, f64> = cases
            .iter()
            .filter(|c| c.group == "attention" && c.preset == preset && c.case.contains(&needle))
            .filter_map(|c| {
                let ctx = c.case.rsplit("/ctx").next()?.parse::<usize>().ok()?;
                Some((ctx, c.estimates?.median_ns / 1e6))
            })
            .collect();
        let comp_slope = match (
            attn.iter().next(),
            attn.iter().next_back(),
            layers.get(&preset),
        ) {
            (Some((c0, a0)), Some((c1, a1)), Some(l)) if c1 > c0 => {
                Some((a1 - a0) / (*c1 - *c0) as f64 * 1000.0 * *l as f64)
            }
            _ => None,
        };
        out.insert(
            model,
            serde_json::json!({
                "preset": preset,
                "decode_ms_per_token": pts.iter().map(|p| serde_json::json!({"depth": p.0, "ms": p.1})).collect::<Vec<_>>(),
                "engine_slope_ms_per_1k_ctx": engine_slope,
                "component_attention_slope_ms_per_1k_ctx": comp_slope,
                "component_path": path,
                "component_note": if path == "naive" {
                    "naive attention decode x layers (the CPU engine runs its private flash kernel instead)"
                } else {
                    "paged attention decode x layers (the path the GPU engine runs here)"
                },
            }),
        );
    }
    serde_json::json!({ "context_slope": out })
}

/// Roofline figures for a median time.
pub fn roofline(
    flops: u64,
    bytes: u64,
    median_ns: f64,
    ceil: Option<&Ceilings>,
) -> (f64, f64, Option<f64>, Option<f64>) {
    let secs = median_ns * 1e-9;
    let gbps = bytes as f64 / secs / 1e9;
    let gflops = flops as f64 / secs / 1e9;
    let pct_bw = ceil.map(|c| 100.0 * gbps / c.copy_gbps);
    let pct_fl = ceil.map(|c| 100.0 * gflops / c.matmul_gflops);
    (gbps, gflops, pct_bw, pct_fl)
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
            let est = if r.status == "ok" {
                index.get(&full).and_then(|d| read_estimates(d).ok())
            } else {
                None
            };
            let (gbps, gflops, pb, pf) = match est {
                Some(e) if e.median_ns > 0.0 => {
                    let (a, b, c, d) = roofline(r.cost.flops, r.cost.bytes, e.median_ns, ceil);
                    (Some(a), Some(b), c, d)
                }
                _ => (None, None, None, None),
            };
            CaseSummary {
                case: full,
                group: r.group.clone(),
                preset: r.preset.clone(),
                device: label.clone(),
                device_name: name.clone(),
                dtype: r.dtype.clone(),
                shape: r.shape.clone(),
                status: r.status.clone(),
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
            }
        })
        .collect()
}

/// Writes (merging with an earlier summary of the same device, case by case) and prints a
/// table. Failed cases' Criterion output is removed so no placeholder timing survives.
pub fn write(
    device: &Device,
    profile: RunProfile,
    mode: Mode,
    recs: &[Record],
    ceil: Option<&Ceilings>,
    print: bool,
) -> Result<PathBuf> {
    // One walk of Criterion's folder per write (the harness writes after every case).
    let index = if mode == Mode::Bench {
        index_criterion(&criterion_dir())
    } else {
        BTreeMap::new()
    };
    let cases = build_cases(device, &index, recs, ceil);
    if mode == Mode::Bench {
        for c in cases.iter().filter(|c| c.status == "failed") {
            if let Some(case_dir) = index.get(&c.case).and_then(|d| d.parent()) {
                let _ = std::fs::remove_dir_all(case_dir);
            }
        }
    }
    let dir = out_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let suffix = if mode == Mode::Bench { "" } else { "-smoke" };
    let path = dir.join(format!("summary-{}{}.json", device::label(device), suffix));
    let mut merged: BTreeMap<String, CaseSummary> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(old) = serde_json::from_str::<Summary>(&text) {
            for c in old.cases {
                merged.insert(c.case.clone(), c);
            }
        }
    }
    for c in &cases {
        merged.insert(c.case.clone(), c.clone());
    }
    let all: Vec<CaseSummary> = merged.into_values().collect();
    let layers: BTreeMap<String, usize> = crate::config::Models::load_default()
        .map(|m| m.presets.into_iter().map(|(k, p)| (k, p.layers)).collect())
        .unwrap_or_default();
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
    };
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    if mode == Mode::Bench && print {
        print_table(&cases, ceil);
        print_slopes(&summary.derived);
    }
    Ok(path)
}

/// Formats nanoseconds with a unit.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Prints a Markdown table of this run's cases.
pub fn print_table(cases: &[CaseSummary], ceil: Option<&Ceilings>) {
    print!("{}", table(cases, ceil));
}

/// A Markdown table of cases (with the ceilings above it).
pub fn table(cases: &[CaseSummary], ceil: Option<&Ceilings>) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    if let Some(c) = ceil {
        let _ = writeln!(
            o,
            "\nCeilings on {}: copy {:.1} GB/s, {} matmul {:.1} GFLOP/s",
            c.device_name, c.copy_gbps, c.matmul_dtype, c.matmul_gflops
        );
    }
    if cases.iter().any(|c| c.fits_in_cache == Some(true)) {
        let _ = writeln!(o, "\n(ᶜ: the case's bytes fit in the last-level cache; its %BW is against DRAM bandwidth)");
    }
    let _ = writeln!(
        o,
        "\n| case | median | ±MAD | tok/s | GB/s | %BW | GFLOP/s | %FLOP | note |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for c in cases {
        let mut note = match (&c.reason, c.extra.get("rel_error")) {
            (Some(r), _) => format!("{}: {}", c.status, r),
            (None, Some(e)) => {
                format!("rel. error {:.3} %", e.as_f64().unwrap_or(f64::NAN) * 100.0)
            }
            _ => String::new(),
        };
        if let Some(f) = c.extra.get("effective_format").and_then(|f| f.as_str()) {
            if c.extra.get("format").and_then(|x| x.as_str()) != Some(f) {
                note.push_str(&format!(" (stored as {f})"));
            }
        }
        match c.estimates {
            Some(e) => {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {:.2} | {} | {:.2} | {} | {} |",
                    c.case,
                    fmt_ns(e.median_ns),
                    fmt_ns(e.mad_ns),
                    c.tokens_per_s
                        .map(|t| format!("{t:.1}"))
                        .unwrap_or_default(),
                    c.gbps.unwrap_or(0.0),
                    c.pct_bw_ceiling
                        .map(|p| format!(
                            "{p:.1}{}",
                            if c.fits_in_cache == Some(true) {
                                "ᶜ"
                            } else {
                                ""
                            }
                        ))
                        .unwrap_or_default(),
                    c.gflops.unwrap_or(0.0),
                    c.pct_flop_ceiling
                        .map(|p| format!("{p:.1}"))
                        .unwrap_or_default(),
                    note
                );
            }
            None => {
                let _ = writeln!(o, "| {} | – | – | – | – | – | – | – | {} |", c.case, note);
            }
        }
    }
    o
}

/// A Markdown report of a whole summary: device, ceilings, one table per group, slopes.
pub fn report(s: &Summary) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Device: {} ({}), mistral.rs {}, written {}.",
        s.device_name, s.device, s.mistralrs_version, s.written_at
    );
    let _ = writeln!(o, "Run profile: {}.", s.profile);
    if let Some(c) = &s.ceilings {
        let _ = writeln!(
            o,
            "Ceilings: copy {:.1} GB/s ({} MiB buffer), {} {}³ matmul {:.1} GFLOP/s (measured {}).",
            c.copy_gbps,
            c.copy_bytes >> 20,
            c.matmul_dtype,
            c.matmul_n,
            c.matmul_gflops,
            c.measured_at
        );
    }
    let mut groups: Vec<&str> = s.cases.iter().map(|c| c.group.as_str()).collect();
    groups.dedup();
    let mut seen = std::collections::BTreeSet::new();
    for g in groups {
        if !seen.insert(g) {
            continue;
        }
        let cases: Vec<CaseSummary> = s.cases.iter().filter(|c| c.group == g).cloned().collect();
        let _ = writeln!(o, "\n### {g}");
        o.push_str(&table(&cases, None));
    }
    o
}

/// Prints the context slopes of `derive`.
pub fn print_slopes(derived: &serde_json::Value) {
    let Some(m) = derived["context_slope"].as_object() else {
        return;
    };
    if m.is_empty() {
        return;
    }
    println!("\n| model | decode ms/token by depth | engine slope (ms per 1k ctx) | components: attention slope x layers |");
    println!("|---|---|---:|---:|");
    for (model, v) in m {
        let pts: Vec<String> = v["decode_ms_per_token"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        format!(
                            "{}: {:.2}",
                            p["depth"],
                            p["ms"].as_f64().unwrap_or(f64::NAN)
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let f = |x: &serde_json::Value| {
            x.as_f64()
                .map(|x| format!("{x:.3}"))
                .unwrap_or_else(|| "–".into())
        };
        println!(
            "| {model} | {} | {} | {} |",
            pts.join(", "),
            f(&v["engine_slope_ms_per_1k_ctx"]),
            f(&v["component_attention_slope_ms_per_1k_ctx"])
        );
    }
}
