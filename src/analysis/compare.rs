//! `mistral-rs-bench compare BASELINE CANDIDATE`: regression or noise, case by case.
//!
//! Each side is a folder holding Criterion results (`target/criterion` of a run, or a saved
//! baseline under `target-baselines/<machine>/`, whose `criterion/` keeps the same layout).
//! For every case in both, the per-iteration sample times (`sample.json`: times / iters) are
//! compared by a seeded bootstrap of the ratio of medians (new / old): the change's 95 %
//! confidence interval. When a side holds several runs of a case (the alternating rounds of
//! `scripts/bench-pr.sh`), the bootstrap is hierarchical: it resamples rounds, then samples
//! within each drawn round, so that the spread *between* processes (code layout, frequency,
//! what else ran), which the samples of one run cannot show, widens the interval. The verdict is a **regression** when the interval lies wholly above
//! zero (a statistically clear slowdown) *and* the median changed by more than `+threshold`
//! (the minimum effect size); an **improvement** likewise below zero and `−threshold`; and
//! **noise** otherwise. This differs from Criterion's own change report, which tests the
//! mean with a significance test and asks that the *whole* interval lie beyond its noise
//! threshold; here only the point estimate of the median must pass the threshold.
//!
//! Rows are grouped by pipeline part in [`crate::parts::REGISTRY`] order.
//!
//! Both sides must come from builds that run the same code paths (rustflags, target
//! features, cargo features: [`check_builds`]); two builds that differ measure different
//! kernels, so their comparison is refused unless asked for.

use crate::case::Group;
use crate::results::criterion::{index_all, read_samples, BUILD_FILE};
use crate::util::build::BuildInfo;
use crate::util::json;
use crate::util::{fmt::fmt_ns, stats::median, table::Table};
use anyhow::{bail, Result};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Default minimum effect size, in %.
pub const DEFAULT_THRESHOLD_PCT: f64 = 3.0;
/// Bootstrap resamples.
pub const RESAMPLES: usize = 10_000;

/// The per-iteration samples of a result set, keyed by case id, one list per run (round) of
/// the case found under the folder.
pub fn load_set(root: &Path) -> Result<BTreeMap<String, Vec<Vec<f64>>>> {
    if !root.is_dir() {
        bail!("{}: no such result folder", root.display());
    }
    let index = index_all(root);
    if index.is_empty() {
        bail!(
            "{}: holds no Criterion results (no */new/benchmark.json)",
            root.display()
        );
    }
    index
        .into_iter()
        .map(|(id, dirs)| {
            let rounds = dirs
                .iter()
                .map(|d| read_samples(d))
                .collect::<Result<Vec<_>>>()?;
            Ok((id, rounds))
        })
        .collect()
}

/// The build recorded for a result folder: the build file of each case's Criterion folder
/// (all must agree), or one at the folder's top (`<root>/`, `<root>/criterion/`, as the
/// first recordings wrote it), else a saved baseline's `metadata.json` `build`. None:
/// results from before builds were recorded.
pub fn build_of(root: &Path) -> Result<Option<BuildInfo>> {
    let files = index_all(root)
        .into_values()
        .flatten()
        .chain([root.to_path_buf(), root.join("criterion")])
        .map(|d| d.join(BUILD_FILE))
        .filter(|f| f.is_file());
    let mut found: Option<(PathBuf, BuildInfo)> = None;
    for f in files {
        let b: BuildInfo = json::read(&f, "a build record")?;
        match &found {
            Some((p, first)) if !first.same_code_paths(&b) => bail!(
                "{} holds results of two different builds ({} and {}): {}",
                root.display(),
                p.display(),
                f.display(),
                first.differences(&b).join("; ")
            ),
            Some(_) => {}
            None => found = Some((f, b)),
        }
    }
    if let Some((_, b)) = found {
        return Ok(Some(b));
    }
    let meta = root.join("metadata.json");
    if meta.is_file() {
        let v: serde_json::Value = json::read(&meta, "baseline metadata")?;
        if !v["build"].is_null() {
            return Ok(Some(serde_json::from_value(v["build"].clone())?));
        }
    }
    Ok(None)
}

/// What a result folder says of the machines its cases ran on, when it is a baseline
/// merged from several runs (`save-baseline … merge`, which records each added run in
/// `metadata.json`'s `merged` and tags its cases with `machine`): a line for every verdict
/// that uses it. None for the results of one run. `root` is the baseline's folder or its
/// `criterion/`.
pub fn merged_note(root: &Path) -> Option<String> {
    let dir = match root.file_name() {
        Some(n) if n == "criterion" => root.parent()?,
        _ => root,
    };
    let meta = dir.join("metadata.json");
    let v: serde_json::Value = json::read(&meta, "baseline metadata").ok()?;
    let runs = v["merged"].as_array().filter(|m| !m.is_empty())?;
    let tags: Vec<&str> = runs.iter().filter_map(|m| m["machine"].as_str()).collect();
    Some(format!(
        "**{} merges the runs of several machines**: its own and {} merged one{} ({}), so \
         its cases were not all measured on one machine and a change of a few percent may \
         be the machine's; each case's `machine` in its summary says where it ran.",
        dir.display(),
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        tags.join(", ")
    ))
}

/// Refuses two result sets whose builds ran different code paths (unless `allow`); returns
/// a line for the report saying what each side was built with, and whether a side is a
/// baseline merged from several machines ([`merged_note`]).
pub fn check_builds(base: &Path, cand: &Path, allow: bool) -> Result<String> {
    let (a, b) = (build_of(base)?, build_of(cand)?);
    let side = |b: &Option<BuildInfo>| {
        b.as_ref()
            .map(BuildInfo::describe)
            .unwrap_or_else(|| "build not recorded".into())
    };
    let mut line = format!("Baseline: {}. Candidate: {}.", side(&a), side(&b));
    let mut notes: Vec<String> = [merged_note(base), merged_note(cand)]
        .into_iter()
        .flatten()
        .collect();
    notes.dedup();
    for note in notes {
        line += &format!(" {note}");
    }
    if let (Some(x), Some(y)) = (&a, &b) {
        if !x.same_code_paths(y) {
            if !allow {
                bail!(
                    "{} and {} were built differently ({}): they measure different code paths. \
                     Rebuild one side, or pass --allow-build-mismatch to compare them anyway",
                    base.display(),
                    cand.display(),
                    x.differences(y).join("; ")
                );
            }
            return Ok(format!(
                "{line} **The builds differ** ({}): changes include the build's.",
                x.differences(y).join("; ")
            ));
        }
    }
    Ok(line)
}

/// The verdict on one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::Display)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Verdict {
    Regression,
    Improvement,
    Noise,
}

impl Verdict {
    /// The two-part rule, all in %: a regression when the interval `[lo, hi]` lies wholly
    /// above zero and the `change` exceeds `+threshold`; an improvement likewise below.
    pub fn of(change: f64, lo: f64, hi: f64, threshold: f64) -> Verdict {
        if lo > 0.0 && change > threshold {
            Verdict::Regression
        } else if hi < 0.0 && change < -threshold {
            Verdict::Improvement
        } else {
            Verdict::Noise
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub case: String,
    /// The case's part (None for an id the suite does not know).
    pub group: Option<Group>,
    pub old_ns: f64,
    pub new_ns: f64,
    /// Change of the median, %.
    pub change_pct: f64,
    /// 95 % bootstrap interval of the change, %.
    pub ci_lo_pct: f64,
    pub ci_hi_pct: f64,
    pub verdict: Verdict,
}

/// One bootstrap draw of a side's median: rounds with replacement (when there are several),
/// then samples with replacement within each drawn round.
fn draw_median(rounds: &[Vec<f64>], rng: &mut StdRng, buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    for _ in 0..rounds.len() {
        let r = if rounds.len() > 1 {
            &rounds[rng.random_range(0..rounds.len())]
        } else {
            &rounds[0]
        };
        for _ in 0..r.len() {
            buf.push(r[rng.random_range(0..r.len())]);
        }
    }
    median(buf)
}

/// Compares two samples of per-iteration times, each given as one or more rounds (runs).
pub fn compare_samples(
    case: &str,
    old: &[Vec<f64>],
    new: &[Vec<f64>],
    threshold_pct: f64,
    seed: u64,
) -> Row {
    let (o, n): (Vec<f64>, Vec<f64>) = (old.concat(), new.concat());
    let (mo, mn) = (median(&o), median(&n));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ratios = Vec::with_capacity(RESAMPLES);
    let (mut bo, mut bn) = (Vec::with_capacity(o.len()), Vec::with_capacity(n.len()));
    for _ in 0..RESAMPLES {
        let d_new = draw_median(new, &mut rng, &mut bn);
        let d_old = draw_median(old, &mut rng, &mut bo);
        ratios.push(d_new / d_old);
    }
    let data = statrs::statistics::Data::new(ratios);
    let mut data = data;
    use statrs::statistics::OrderStatistics;
    let lo = (data.quantile(0.025) - 1.0) * 100.0;
    let hi = (data.quantile(0.975) - 1.0) * 100.0;
    let change = (mn / mo - 1.0) * 100.0;
    let verdict = Verdict::of(change, lo, hi, threshold_pct);
    Row {
        case: case.to_string(),
        group: case
            .parse::<crate::case::CaseId>()
            .ok()
            .map(|id| id.group()),
        old_ns: mo,
        new_ns: mn,
        change_pct: change,
        ci_lo_pct: lo,
        ci_hi_pct: hi,
        verdict,
    }
}

/// Compares every case present in both sets.
pub fn compare(base: &Path, cand: &Path, threshold_pct: f64) -> Result<(Vec<Row>, Vec<String>)> {
    let a = load_set(base)?;
    let b = load_set(cand)?;
    let mut rows = Vec::new();
    let mut unmatched = Vec::new();
    for (i, (id, old)) in a.iter().enumerate() {
        match b.get(id) {
            Some(new) => rows.push(compare_samples(
                id,
                old,
                new,
                threshold_pct,
                0x5EED + i as u64,
            )),
            None => unmatched.push(format!("{id}: only in {}", base.display())),
        }
    }
    for id in b.keys().filter(|k| !a.contains_key(*k)) {
        unmatched.push(format!("{id}: only in {}", cand.display()));
    }
    // Group order follows the pipeline, so a generation change sits near its component.
    rows.sort_by_key(|r| {
        (
            r.group.map(crate::parts::position).unwrap_or(usize::MAX),
            r.case.clone(),
        )
    });
    Ok((rows, unmatched))
}

/// Every row as one table (case, old, new, change, interval, verdict).
pub fn table(rows: &[Row]) -> Table {
    let mut t = Table::new(&[
        "case",
        "old>",
        "new>",
        "change>",
        "95 % interval",
        "verdict",
    ]);
    for r in rows {
        let mark = match r.verdict {
            Verdict::Regression => "🔴 regression",
            Verdict::Improvement => "🟢 improvement",
            Verdict::Noise => "noise",
        };
        t.push([
            r.case.clone(),
            fmt_ns(r.old_ns),
            fmt_ns(r.new_ns),
            format!("{:+.2} %", r.change_pct),
            format!("[{:+.2}, {:+.2}] %", r.ci_lo_pct, r.ci_hi_pct),
            mark.to_string(),
        ]);
    }
    t
}

/// Markdown for a pull-request comment, one table per pipeline part.
pub fn markdown(rows: &[Row], threshold_pct: f64) -> String {
    let count = |v: Verdict| rows.iter().filter(|r| r.verdict == v).count();
    let (reg, imp) = (count(Verdict::Regression), count(Verdict::Improvement));
    let mut o = format!(
        "**{reg} regression(s), {imp} improvement(s), {} within noise** (a change counts when its bootstrap 95 % interval excludes 0 and the median moved more than {threshold_pct} %)\n",
        rows.len() - reg - imp
    );
    let mut start = 0;
    while start < rows.len() {
        let g = rows[start].group;
        let end = start + rows[start..].iter().take_while(|r| r.group == g).count();
        let name = g.map(|g| g.to_string()).unwrap_or_else(|| "other".into());
        o.push_str(&format!("\n#### {name}\n\n"));
        o.push_str(&table(&rows[start..end]).markdown());
        start = end;
    }
    o
}

/// `github-action-benchmark`'s `customSmallerIsBetter` input (the candidate's medians).
pub fn github_action_benchmark(rows: &[Row]) -> serde_json::Value {
    serde_json::Value::Array(
        rows.iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.case,
                    "unit": "ns",
                    "value": r.new_ns,
                    "range": format!("[{:+.2}%, {:+.2}%]", r.ci_lo_pct, r.ci_hi_pct),
                    "extra": format!("baseline {:.1} ns, change {:+.2} %, {:?}", r.old_ns, r.change_pct, r.verdict),
                })
            })
            .collect(),
    )
}

/// Bencher Metric Format (`latency` in ns, with the interval as bounds).
pub fn bencher(rows: &[Row]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for r in rows {
        m.insert(
            r.case.clone(),
            serde_json::json!({ "latency": {
                "value": r.new_ns,
                "lower_value": r.old_ns * (1.0 + r.ci_lo_pct / 100.0),
                "upper_value": r.old_ns * (1.0 + r.ci_hi_pct / 100.0),
            }}),
        );
    }
    serde_json::Value::Object(m)
}

/// Writes the outputs beside each other (the Markdown table, the two dashboard formats, and
/// every row with its verdict as `compare.json`); returns their paths.
pub fn write_outputs(
    rows: &[Row],
    threshold_pct: f64,
    build_note: &str,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let rows_json = dir.join("compare.json");
    std::fs::write(
        &rows_json,
        serde_json::to_string_pretty(&serde_json::json!({
            "threshold_pct": threshold_pct,
            "builds": build_note,
            "rows": rows,
        }))?,
    )?;
    let md = dir.join("compare.md");
    let gab = dir.join("github-action-benchmark.json");
    let bmf = dir.join("bencher.json");
    std::fs::write(
        &md,
        format!("{build_note}\n\n{}", markdown(rows, threshold_pct)),
    )?;
    std::fs::write(
        &gab,
        serde_json::to_string_pretty(&github_action_benchmark(rows))?,
    )?;
    std::fs::write(&bmf, serde_json::to_string_pretty(&bencher(rows))?)?;
    Ok(vec![md, gab, bmf, rows_json])
}

/// The cases with an in-situ breakdown among a side's summaries, whatever device they ran on
/// (a GPU run compared on a CPU-only host): a saved baseline's own `summary-*.json`, for the
/// live Criterion folder the suite's summaries beside it, and those of a side's round folders
/// (`r1/out/summary-*.json`, as `scripts/gpu-upstream.sh` writes them). The first breakdown
/// found of a case is kept.
pub fn insitu_cases_of_side(root: &Path) -> Vec<crate::results::CaseSummary> {
    let dir = if root == crate::util::paths::criterion_dir() {
        crate::util::paths::out_dir()
    } else {
        root.to_path_buf()
    };
    let sorted = |d: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        v.sort();
        v
    };
    let summaries_in = |d: &Path| {
        sorted(d).into_iter().filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("summary-") && n.ends_with(".json"))
        })
    };
    let mut files: Vec<PathBuf> = summaries_in(&dir).collect();
    for r in sorted(&dir).into_iter().map(|p| p.join("out")) {
        if r.is_dir() {
            files.extend(summaries_in(&r));
        }
    }
    let mut out: Vec<crate::results::CaseSummary> = Vec::new();
    for f in files {
        let Ok(s) = crate::results::Summary::load(&f) else {
            continue;
        };
        for c in s.cases.into_iter().filter(|c| c.insitu.is_some()) {
            if !out.iter().any(|o| o.case == c.case) {
                out.push(c);
            }
        }
    }
    out
}

/// One part of an end-to-end case that moved: its in-situ time per unit on each side.
#[derive(Debug, Clone, Serialize)]
pub struct PartChange {
    pub case: String,
    pub part: crate::device::insitu::Part,
    pub unit: String,
    pub old_ms: f64,
    pub new_ms: f64,
    pub delta_ms: f64,
    /// Half the sum of the two sides' per-iteration ranges: how much of the delta the
    /// attributed iterations' own spread could explain, ms.
    pub spread_ms: f64,
}

/// For every end-to-end case whose verdict is a change, its change split by part from the
/// two sides' in-situ breakdowns (cases without a breakdown on both sides are skipped).
pub fn split_by_part(
    rows: &[Row],
    old: &[crate::results::CaseSummary],
    new: &[crate::results::CaseSummary],
) -> Vec<PartChange> {
    use crate::device::insitu::Part;
    let find = |s: &[crate::results::CaseSummary], id: &str| {
        s.iter()
            .find(|c| c.case == id)
            .and_then(|c| c.insitu.clone())
    };
    let mut out = Vec::new();
    for r in rows.iter().filter(|r| r.verdict != Verdict::Noise) {
        let (Some(a), Some(b)) = (find(old, &r.case), find(new, &r.case)) else {
            continue;
        };
        let mut parts: Vec<Part> = a.parts.iter().chain(&b.parts).map(|p| p.part).collect();
        parts.sort();
        parts.dedup();
        let mut rows_of: Vec<PartChange> = parts
            .into_iter()
            .map(|p| {
                let (x, y) = (a.part(p), b.part(p));
                let ms = |s: Option<&crate::device::insitu::PartShare>| {
                    s.map(|s| s.per_unit_ms).unwrap_or(0.0)
                };
                let half = |s: Option<&crate::device::insitu::PartShare>| {
                    s.map(|s| (s.per_unit_range_ms[1] - s.per_unit_range_ms[0]) / 2.0)
                        .unwrap_or(0.0)
                };
                PartChange {
                    case: r.case.clone(),
                    part: p,
                    unit: b.unit.clone(),
                    old_ms: ms(x),
                    new_ms: ms(y),
                    delta_ms: ms(y) - ms(x),
                    spread_ms: half(x) + half(y),
                }
            })
            .collect();
        rows_of.sort_by(|p, q| q.delta_ms.abs().total_cmp(&p.delta_ms.abs()));
        out.extend(rows_of);
    }
    out
}

/// The per-part split as a table.
pub fn split_table(changes: &[PartChange]) -> Table {
    let mut t = Table::new(&[
        "case",
        "part",
        "old ms/unit>",
        "new ms/unit>",
        "Δ ms>",
        "± spread>",
    ]);
    for c in changes {
        t.push([
            c.case.clone(),
            c.part.to_string(),
            format!("{:.3}", c.old_ms),
            format!("{:.3}", c.new_ms),
            format!("{:+.3}", c.delta_ms),
            format!("{:.3}", c.spread_ms),
        ]);
    }
    t
}
