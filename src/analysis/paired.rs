//! The pull-request verdict from paired samples ([`crate::run::pair`]): per case, per PR.
//!
//! **Per case.** Each pair is one sample of build A and one of build B taken back to back
//! (ABBA order); the statistic is the pair's ratio B / A, so drift between pairs cancels.
//! The change is the median ratio − 1; its 95 % interval is the distribution-free interval
//! of the median (order statistics), widened to the t-interval over the rounds' medians
//! when the rounds (fresh set-ups) disagree; the sign test gives a p-value. A case is **flagged**
//! as a regression when the interval lies wholly above zero *and* the median change exceeds
//! `+threshold` (an improvement likewise below), else noise. Like `compare`, and unlike
//! Criterion (which asks the whole interval to lie beyond its noise threshold), only the
//! point estimate must pass the threshold.
//!
//! **Per PR.** Every flagged case is measured again in a fresh pair of worker processes
//! (new code layout, new allocations, later machine state); a change counts only when the
//! confirmation flags it the same way. The PR fails when at least one regression is
//! confirmed, or when a case failed to run (its workers died; the pass goes on without
//! it). With a per-case false-flag rate p and independent passes, a clean case fails the PR
//! with probability about p², so a PR of N cases with about N·p².

use crate::analysis::compare::Verdict;
use crate::case::Group;
use crate::run::pair::{Opts, Pair, PairedCase, Side};
use crate::util::{fmt::fmt_ns, json, stats, table::Table};
use anyhow::{bail, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One case's verdict from its pairs.
#[derive(Debug, Clone, Serialize)]
pub struct PairRow {
    pub case: String,
    pub group: Option<Group>,
    /// Median ns per iteration of each side.
    pub a_ns: f64,
    pub b_ns: f64,
    /// Median pair ratio − 1, %.
    pub change_pct: f64,
    /// 95 % interval of the median ratio − 1, %.
    pub ci_lo_pct: f64,
    pub ci_hi_pct: f64,
    /// Two-sided sign test of "no change".
    pub p_sign: f64,
    pub pairs: usize,
    pub stop: String,
    pub steal_pct: Option<f64>,
    /// The sd of the rounds' median log ratios, %, and the part of it that no sampling
    /// explains (the set-up's own effect, [`crate::util::stats::ClusterScatter::setup`]).
    /// A case whose set-up part exceeds its sampling part narrows with more rounds
    /// (`--rounds`), not with a longer cap. None with fewer than 3 rounds.
    pub round_sd_pct: Option<f64>,
    pub setup_sd_pct: Option<f64>,
    pub verdict: Verdict,
    /// The confirmation pass's verdict (flagged cases only).
    pub confirm: Option<Verdict>,
    pub confirm_change_pct: Option<f64>,
}

impl PairRow {
    /// The rounds scatter more than their sampling explains: the set-up part is the larger
    /// (as [`crate::util::stats::ClusterScatter::setup_bound`], from the two stored figures).
    pub fn setup_bound(&self) -> bool {
        match (self.round_sd_pct, self.setup_sd_pct) {
            (Some(b), Some(s)) => s * s > b * b - s * s,
            _ => false,
        }
    }

    /// A flagged change that its confirmation pass flagged the same way.
    pub fn confirmed(&self) -> bool {
        self.verdict != Verdict::Noise && self.confirm == Some(self.verdict)
    }
}

/// The verdict on one case's pairs.
pub fn judge(c: &PairedCase, threshold_pct: f64) -> PairRow {
    let r = c.ratios();
    let m = stats::median(&r);
    let (lo, hi) = c.ratio_ci();
    let (change, lo, hi) = ((m - 1.0) * 100.0, (lo - 1.0) * 100.0, (hi - 1.0) * 100.0);
    let logs: Vec<f64> = r.iter().map(|x| x.ln()).collect();
    let verdict = Verdict::of(change, lo, hi, threshold_pct);
    let scatter = c.round_scatter();
    PairRow {
        case: c.case.clone(),
        group: c
            .case
            .parse::<crate::case::CaseId>()
            .ok()
            .map(|id| id.group()),
        a_ns: stats::median(&c.a_ns),
        b_ns: stats::median(&c.b_ns),
        change_pct: change,
        ci_lo_pct: lo,
        ci_hi_pct: hi,
        p_sign: stats::sign_test_p(&logs),
        pairs: r.len(),
        stop: c.stop.clone(),
        steal_pct: c.steal_pct,
        round_sd_pct: scatter.map(|s| s.between * 100.0),
        setup_sd_pct: scatter.map(|s| s.setup() * 100.0),
        verdict,
        confirm: None,
        confirm_change_pct: None,
    }
}

/// Puts a confirmation pass's verdicts on the flagged rows of the first pass.
pub fn confirm(rows: &mut [PairRow], again: &[PairRow]) {
    for r in rows.iter_mut().filter(|r| r.verdict != Verdict::Noise) {
        if let Some(a) = again.iter().find(|a| a.case == r.case) {
            r.confirm = Some(a.verdict);
            r.confirm_change_pct = Some(a.change_pct);
        }
    }
}

/// A case that could not be measured: a worker failed (set-up or sampling), e.g. a case
/// that a build cannot run on this device.
#[derive(Debug, Clone, Serialize)]
pub struct FailedCase {
    pub case: String,
    pub error: String,
}

/// The whole PR's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct PrVerdict {
    /// No confirmed regression and no case that failed to run.
    pub pass: bool,
    pub cases: usize,
    pub flagged: usize,
    pub confirmed_regressions: Vec<String>,
    pub confirmed_improvements: Vec<String>,
    /// Flagged in the first pass, not in the confirmation.
    pub unconfirmed: Vec<String>,
    /// Cases that failed to run (in either pass): the PR fails, since a broken case hides
    /// whatever it would have measured.
    pub failed: Vec<String>,
}

/// The PR's verdict from its rows and the cases that failed to run.
pub fn pr_verdict(rows: &[PairRow], failed: &[FailedCase]) -> PrVerdict {
    let names = |f: &dyn Fn(&PairRow) -> bool| -> Vec<String> {
        rows.iter()
            .filter(|r| f(r))
            .map(|r| r.case.clone())
            .collect()
    };
    let reg = names(&|r| r.confirmed() && r.verdict == Verdict::Regression);
    PrVerdict {
        pass: reg.is_empty() && failed.is_empty(),
        cases: rows.len()
            + failed
                .iter()
                .filter(|f| !rows.iter().any(|r| r.case == f.case))
                .count(),
        flagged: rows.iter().filter(|r| r.verdict != Verdict::Noise).count(),
        confirmed_improvements: names(&|r| r.confirmed() && r.verdict == Verdict::Improvement),
        unconfirmed: names(&|r| r.verdict != Verdict::Noise && !r.confirmed()),
        confirmed_regressions: reg,
        failed: failed.iter().map(|f| f.case.clone()).collect(),
    }
}

/// What to compare and how.
pub struct Request {
    pub a: Side,
    pub b: Side,
    pub opts: Opts,
    pub threshold_pct: f64,
    /// Cases whose id matches (None: all of the set).
    pub filter: Option<regex::Regex>,
    pub set: crate::case::CaseSet,
    /// Re-measure flagged cases in fresh workers.
    pub confirm: bool,
    /// Compare builds with different rustflags or target features anyway.
    pub allow_build_mismatch: bool,
}

/// The comparison's outputs.
#[derive(Debug, Serialize)]
pub struct Report {
    pub device: String,
    pub a: String,
    pub b: String,
    pub a_build: String,
    pub b_build: String,
    pub set: crate::case::CaseSet,
    pub opts: Opts,
    pub threshold_pct: f64,
    pub verdict: PrVerdict,
    pub rows: Vec<PairRow>,
    /// Seconds: the first pass, the confirmation, in all (worker start-up included).
    pub first_pass_s: f64,
    pub confirm_s: f64,
    pub total_s: f64,
    /// Every case's pairs (first pass, then confirmation).
    pub pairs: Vec<PairedCase>,
    pub confirm_pairs: Vec<PairedCase>,
    /// Cases that failed to run, with their errors.
    pub failed: Vec<FailedCase>,
}

/// Measures `cases` in order. A case whose workers fail is recorded with its error and the
/// pass goes on in fresh workers, so that one broken case (found on an H200: a format the
/// build cannot run on the device) does not lose the others.
fn pass(req: &Request, cases: &[String]) -> Result<(Vec<PairedCase>, Vec<FailedCase>, String)> {
    let mut pair = Pair::start(&req.a, &req.b, req.opts)?;
    let device = pair.device.clone();
    let (mut out, mut failed) = (Vec::new(), Vec::new());
    for (i, c) in cases.iter().enumerate() {
        let p = match pair.measure(c, i % 2 == 1) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("[{}/{}] {c}: FAILED: {e:#}", i + 1, cases.len());
                failed.push(FailedCase {
                    case: c.clone(),
                    error: format!("{e:#}"),
                });
                pair = Pair::start(&req.a, &req.b, req.opts)?;
                continue;
            }
        };
        let r = judge(&p, req.threshold_pct);
        eprintln!(
            "[{}/{}] {c}: {:+.2} % [{:+.2}, {:+.2}] over {} pairs ({}){}",
            i + 1,
            cases.len(),
            r.change_pct,
            r.ci_lo_pct,
            r.ci_hi_pct,
            r.pairs,
            r.stop,
            match r.verdict {
                Verdict::Noise => String::new(),
                v => format!(" {v:?}"),
            }
        );
        out.push(p);
    }
    Ok((out, failed, device))
}

/// Runs the comparison: the first pass over the selected cases, then the confirmation of
/// what it flagged.
pub fn run(req: &Request) -> Result<Report> {
    let t0 = Instant::now();
    let (cases, a_build, b_build) = {
        let mut pair = Pair::start(&req.a, &req.b, req.opts)?;
        if !pair.a_build.same_code_paths(&pair.b_build) && !req.allow_build_mismatch {
            bail!(
                "{} and {} were built differently ({}): they measure different code paths. \
                 Rebuild one side, or pass --allow-build-mismatch",
                req.a.label,
                req.b.label,
                pair.a_build.differences(&pair.b_build).join("; ")
            );
        }
        let cases: Vec<String> = pair
            .cases()?
            .into_iter()
            .filter(|c| req.set.holds(c.set))
            .filter(|c| req.filter.as_ref().is_none_or(|f| f.is_match(&c.id)))
            .map(|c| c.id)
            .collect();
        (cases, pair.a_build.describe(), pair.b_build.describe())
    };
    if cases.is_empty() {
        bail!(
            "no case of set `{}` matches the filter in both builds",
            req.set
        );
    }
    let (first, mut failed, device) = pass(req, &cases)?;
    let first_pass_s = t0.elapsed().as_secs_f64();
    let mut rows: Vec<PairRow> = first.iter().map(|p| judge(p, req.threshold_pct)).collect();
    let flagged: Vec<String> = rows
        .iter()
        .filter(|r| r.verdict != Verdict::Noise)
        .map(|r| r.case.clone())
        .collect();
    let t1 = Instant::now();
    let mut confirm_pairs = Vec::new();
    if req.confirm && !flagged.is_empty() {
        eprintln!(
            "confirming {} flagged case(s) in fresh workers",
            flagged.len()
        );
        let (again, failed_again, _) = pass(req, &flagged)?;
        failed.extend(failed_again);
        let again_rows: Vec<PairRow> = again.iter().map(|p| judge(p, req.threshold_pct)).collect();
        confirm(&mut rows, &again_rows);
        confirm_pairs = again;
    }
    let confirm_s = t1.elapsed().as_secs_f64();
    Ok(Report {
        device,
        a: req.a.label.clone(),
        b: req.b.label.clone(),
        a_build,
        b_build,
        set: req.set,
        opts: req.opts,
        threshold_pct: req.threshold_pct,
        verdict: pr_verdict(&rows, &failed),
        rows,
        failed,
        first_pass_s,
        confirm_s,
        total_s: t0.elapsed().as_secs_f64(),
        pairs: first,
        confirm_pairs,
    })
}

/// The rows as a table.
pub fn table(rows: &[PairRow]) -> Table {
    let mut t = Table::new(&[
        "case",
        "A>",
        "B>",
        "change>",
        "95 % interval",
        "pairs>",
        "steal %>",
        "rounds' sd (set-up) %>",
        "first pass",
        "confirmation",
    ]);
    for r in rows {
        t.push([
            r.case.clone(),
            fmt_ns(r.a_ns),
            fmt_ns(r.b_ns),
            format!("{:+.2} %", r.change_pct),
            format!("[{:+.2}, {:+.2}] %", r.ci_lo_pct, r.ci_hi_pct),
            r.pairs.to_string(),
            r.steal_pct.map(|s| format!("{s:.1}")).unwrap_or_default(),
            match (r.round_sd_pct, r.setup_sd_pct) {
                (Some(b), Some(s)) => format!("{b:.1} ({s:.1})"),
                _ => String::new(),
            },
            r.verdict.to_string(),
            match (r.confirm, r.confirm_change_pct) {
                (Some(v), Some(c)) => format!("{v} ({c:+.2} %)"),
                _ => String::new(),
            },
        ]);
    }
    t
}

/// The report as Markdown: the PR's verdict, then every case.
pub fn markdown(r: &Report) -> String {
    let v = &r.verdict;
    let mut s = format!(
        "## Paired comparison: {}\n\n{} = A, {} = B, on {}; set `{}`, {} cases, threshold {} %, \
         precision ±{} % (95 %), {} set-ups a component case, {:.0} s in all ({:.0} s first \
         pass, {:.0} s confirmation).\n\nA: {}.\nB: {}.\n\n",
        match (v.pass, v.failed.is_empty()) {
            (true, _) => "pass",
            (false, true) => "FAIL (confirmed regression)",
            (false, false) => "FAIL (a case failed to run)",
        },
        r.a,
        r.b,
        r.device,
        r.set,
        v.cases,
        r.threshold_pct,
        r.opts.precision * 100.0,
        r.opts.component_rounds(&r.device),
        r.total_s,
        r.first_pass_s,
        r.confirm_s,
        r.a_build,
        r.b_build,
    );
    s += &format!(
        "Flagged in the first pass: {}; confirmed regressions: {}; confirmed improvements: {}; \
         not confirmed: {}.\n\n",
        v.flagged,
        list(&v.confirmed_regressions),
        list(&v.confirmed_improvements),
        list(&v.unconfirmed)
    );
    s += &table(&r.rows).markdown();
    let bound: Vec<String> = r
        .rows
        .iter()
        .filter(|x| x.setup_bound())
        .map(|x| format!("`{}`", x.case))
        .collect();
    if !bound.is_empty() {
        s += &format!(
            "\nSet-up-bound (their rounds, each a fresh pair of processes, scatter more than \
             their pairs' noise explains; more rounds (`--rounds`) narrow their intervals, a \
             longer cap does not): {}.\n",
            bound.join(", ")
        );
    }
    if !r.failed.is_empty() {
        s += "\nFailed to run (no measurement):\n\n";
        for f in &r.failed {
            s += &format!("- `{}`: {}\n", f.case, f.error.replace('\n', " "));
        }
    }
    s
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The measurements of a stored `pair.json` (what [`rounds_table`] reads of it).
#[derive(serde::Deserialize)]
struct Stored {
    pairs: Vec<PairedCase>,
    #[serde(default)]
    confirm_pairs: Vec<PairedCase>,
}

/// Where each case's interval width comes from, over stored `pair.json` files (first passes
/// and confirmations alike): per case, the medians over its measurements of the pairs per
/// round, the rounds' sd, the part of it the pairs' own noise explains and the set-up part
/// ([`crate::util::stats::ClusterScatter`]), and in how many measurements the set-up part was
/// the larger. Measurements with fewer than 3 rounds are left out.
pub fn rounds_table(files: &[PathBuf]) -> Result<Table> {
    let mut by_case: std::collections::BTreeMap<String, Vec<(f64, stats::ClusterScatter)>> =
        Default::default();
    for f in files {
        let s: Stored = json::read(f, "a pair.json")?;
        for c in s.pairs.iter().chain(&s.confirm_pairs) {
            if let Some(x) = c.round_scatter() {
                let per_round = c.a_ns.len() as f64 / c.rounds.len() as f64;
                by_case
                    .entry(c.case.clone())
                    .or_default()
                    .push((per_round, x));
            }
        }
    }
    if by_case.is_empty() {
        bail!("no case with 3 or more rounds in {} file(s)", files.len());
    }
    let mut t = Table::new(&[
        "case",
        "measurements>",
        "pairs a round>",
        "rounds' sd %>",
        "sampling part %>",
        "set-up part %>",
        "set-up-bound",
    ]);
    for (case, v) in by_case {
        let med = |f: &dyn Fn(&(f64, stats::ClusterScatter)) -> f64| {
            stats::median(&v.iter().map(f).collect::<Vec<_>>())
        };
        let bound = v.iter().filter(|(_, x)| x.setup_bound()).count();
        t.push([
            case,
            v.len().to_string(),
            format!("{:.0}", med(&|x| x.0)),
            format!("{:.2}", med(&|x| x.1.between * 100.0)),
            format!("{:.2}", med(&|x| x.1.sampling * 100.0)),
            format!("{:.2}", med(&|x| x.1.setup() * 100.0)),
            format!("{bound} of {}", v.len()),
        ]);
    }
    Ok(t)
}

/// Writes `pair.json` and `pair.md` under `out`; returns their paths.
pub fn write_outputs(r: &Report, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)?;
    let (j, m) = (out.join("pair.json"), out.join("pair.md"));
    json::write(&j, r)?;
    std::fs::write(&m, markdown(r))?;
    Ok(vec![j, m])
}
