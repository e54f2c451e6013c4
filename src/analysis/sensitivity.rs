//! `mistral-rs-bench verdict-rates CSV`: the rates of `scripts/verdict-sensitivity.sh`'s
//! trials, each with its 95 % Clopper–Pearson interval.
//!
//! - **Injected** trials (`work`: deterministic extra work, `spin`: a timed busy wait) of
//!   one case and one fraction: in how many of the trials the PR failed (a confirmed
//!   regression), and in how many the first pass flagged it.
//! - **A/A** trials (`aa`, a whole set, one binary on both sides): the per-PR false-alarm
//!   rate (PRs failed), and the per-case rates over every case comparison of every trial,
//!   first pass and confirmed.

use crate::util::{stats, table::Table};
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One trial: a row of the CSV (the columns this view reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Trial {
    pub kind: String,
    pub case: String,
    pub fraction: f64,
    pub trial: u32,
    pub cases: u64,
    pub flagged: u64,
    pub confirmed_regressions: u64,
    pub pr_pass: u8,
    pub target_change_pct: Option<f64>,
    pub target_first: Option<String>,
    pub total_s: f64,
}

pub fn load(path: &Path) -> Result<Vec<Trial>> {
    let mut r = csv::Reader::from_path(path).with_context(|| format!("{}", path.display()))?;
    r.deserialize()
        .map(|t| t.with_context(|| format!("{}: a bad row", path.display())))
        .collect()
}

/// `k of n (x %, 95 % CI [lo, hi] %)`; `none yet` without trials.
pub fn rate(k: u64, n: u64) -> String {
    if n == 0 {
        return "none yet".into();
    }
    let (lo, hi) = stats::clopper_pearson(k, n, 0.95);
    let pct = k as f64 / n as f64 * 100.0;
    format!(
        "{k} of {n} ({pct:.1} %, [{:.1}, {:.1}] %)",
        lo * 100.0,
        hi * 100.0
    )
}

/// The injected trials, one row per (kind, case, fraction).
pub fn injected(trials: &[Trial]) -> Table {
    let mut by: BTreeMap<(String, String, String), Vec<&Trial>> = BTreeMap::new();
    for t in trials
        .iter()
        .filter(|t| !AA_KINDS.contains(&t.kind.as_str()))
    {
        by.entry((t.case.clone(), t.kind.clone(), format!("{:.2}", t.fraction)))
            .or_default()
            .push(t);
    }
    let mut tab = Table::new(&[
        "case",
        "knob",
        "injected>",
        "PR failed (confirmed)",
        "first pass flagged",
        "median change>",
        "median s/trial>",
    ]);
    for ((case, kind, f), v) in by {
        let n = v.len() as u64;
        let failed = v.iter().filter(|t| t.pr_pass == 0).count() as u64;
        let first = v
            .iter()
            .filter(|t| t.target_first.as_deref() == Some("regression"))
            .count() as u64;
        let ch: Vec<f64> = v.iter().filter_map(|t| t.target_change_pct).collect();
        let secs: Vec<f64> = v.iter().map(|t| t.total_s).collect();
        tab.push([
            case,
            kind,
            format!("{:.0} %", f.parse::<f64>().unwrap_or(f64::NAN) * 100.0),
            rate(failed, n),
            rate(first, n),
            format!("{:+.2} %", stats::median(&ch)),
            format!("{:.1}", stats::median(&secs)),
        ]);
    }
    tab
}

/// The A/A kinds: one binary copied to both sides, and two builds of equivalent code.
pub const AA_KINDS: [&str; 2] = ["aa", "aa2"];

/// The A/A trials, per PR and per case: a column for one binary (`aa`), one for two builds
/// of equivalent code (`aa2`).
pub fn aa(trials: &[Trial]) -> Table {
    let cols = AA_KINDS.map(|k| trials.iter().filter(|t| t.kind == k).collect::<Vec<_>>());
    let row =
        |name: &str, f: &dyn Fn(&[&Trial]) -> String| [name.to_string(), f(&cols[0]), f(&cols[1])];
    let sum = |v: &[&Trial], f: fn(&Trial) -> u64| v.iter().map(|t| f(t)).sum::<u64>();
    let mut tab = Table::new(&["A/A", "one binary", "two builds"]);
    tab.push(row("clean PRs failed", &|v| {
        rate(
            v.iter().filter(|t| t.pr_pass == 0).count() as u64,
            v.len() as u64,
        )
    }));
    tab.push(row("cases flagged, first pass", &|v| {
        rate(sum(v, |t| t.flagged), sum(v, |t| t.cases))
    }));
    tab.push(row("cases confirmed as regressions", &|v| {
        rate(sum(v, |t| t.confirmed_regressions), sum(v, |t| t.cases))
    }));
    tab.push(row("one comparison, median", &|v| {
        let secs: Vec<f64> = v.iter().map(|t| t.total_s).collect();
        if secs.is_empty() {
            "none yet".into()
        } else {
            format!("{:.0} s", stats::median(&secs))
        }
    }));
    tab
}
