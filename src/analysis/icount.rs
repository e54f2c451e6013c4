//! The instruction-count verdict: two builds' callgrind counts per component case.
//!
//! A count is deterministic (the same binary, inputs and environment give the same
//! instructions), so the change of one case is a point, not an interval: a case is a
//! regression when B executes more than `threshold_pct` more instructions per iteration
//! than A ([`Verdict::of`] with the interval collapsed onto the change). There is nothing to
//! confirm and no false-discovery control to apply; the A/A rows of
//! `docs/verdict-sensitivity.md` measure how far "deterministic" holds here.
//!
//! What it cannot see is said in every report ([`BLIND_SPOTS`]): it counts the
//! `x86-64-v3` build's code path (valgrind 3.19 runs no AVX-512), on one thread.
//! The counting itself is [`crate::run::icount`].

use super::compare::Verdict;
use crate::case::{CaseId, CaseSet, Group};
use crate::run::icount::{check_build, count, top_functions, valgrind_version, Count};
use crate::run::pair::{Side, Worker};
use crate::util::json;
use crate::util::table::Table;
use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a count cannot see; printed with every report.
pub const BLIND_SPOTS: &str = "Instruction counts (callgrind, one thread) see executed \
instructions only: not memory bandwidth, cache or TLB misses, branch mispredictions, \
threading (how work is split or how threads wait) or clock frequency. A change that only \
moves data, or only changes parallelism, leaves the count unchanged; the timed verdict \
(`pair`) sees those. The count is of the x86-64-v3 build (AVX2 + FMA; valgrind 3.19 runs no \
AVX-512), not of the native build `cargo bench` times.";

/// What to count.
pub struct Request {
    pub a: Side,
    /// The candidate; without it only A is counted (a record, no verdict).
    pub b: Option<Side>,
    pub set: CaseSet,
    pub filter: Option<regex::Regex>,
    pub iters: u64,
    pub threshold_pct: f64,
    /// valgrind processes at once.
    pub jobs: usize,
    /// Per valgrind process.
    pub deadline: Duration,
    /// callgrind files, `icount.json`, `icount.md`.
    pub out: PathBuf,
    /// Functions listed per flagged case.
    pub top: usize,
}

/// A function whose self count moved, per nominal iteration.
#[derive(Debug, Clone, Serialize)]
pub struct FnDiff {
    pub function: String,
    pub a_ir_per_iter: f64,
    pub b_ir_per_iter: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub case: String,
    pub group: Option<Group>,
    pub a: Count,
    pub b: Option<Count>,
    /// Change of instructions per iteration, %.
    pub change_pct: Option<f64>,
    pub verdict: Option<Verdict>,
    /// For a flagged case: the functions whose self counts moved most.
    pub moved: Vec<FnDiff>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrVerdict {
    /// No case regressed.
    pub pass: bool,
    pub cases: usize,
    pub regressions: Vec<String>,
    pub improvements: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub valgrind: String,
    pub a_build: String,
    pub b_build: Option<String>,
    pub set: CaseSet,
    pub iters: u64,
    pub threshold_pct: f64,
    pub jobs: usize,
    pub rows: Vec<Row>,
    pub verdict: Option<PrVerdict>,
    pub wall_s: f64,
    pub blind_spots: &'static str,
}

/// The change in % of B against A, instructions per iteration.
pub fn change_pct(a: &Count, b: &Count) -> f64 {
    (b.ir_per_iter / a.ir_per_iter - 1.0) * 100.0
}

/// A point change judged by the suite's two-part rule with a zero-width interval.
pub fn judge(change_pct: f64, threshold_pct: f64) -> Verdict {
    Verdict::of(change_pct, change_pct, change_pct, threshold_pct)
}

/// The verdict of a whole comparison: it fails when any case regressed.
pub fn pr_verdict(rows: &[Row]) -> Option<PrVerdict> {
    rows.first()?.verdict?;
    let of = |v: Verdict| -> Vec<String> {
        rows.iter()
            .filter(|r| r.verdict == Some(v))
            .map(|r| r.case.clone())
            .collect()
    };
    let regressions = of(Verdict::Regression);
    Some(PrVerdict {
        pass: regressions.is_empty(),
        cases: rows.len(),
        regressions,
        improvements: of(Verdict::Improvement),
    })
}

/// Joins two per-function lists by function name (the file and object parts of
/// callgrind_annotate's names differ between checkouts) and keeps the `n` largest moves.
pub fn moved_functions(
    a: &[(u64, String)],
    b: &[(u64, String)],
    a_iters: u64,
    b_iters: u64,
    n: usize,
) -> Vec<FnDiff> {
    let key = |name: &str| -> String {
        let f = name.split_once(':').map_or(name, |(_, f)| f);
        let f = f.rsplit_once(" [").map_or(f, |(f, _)| f).trim();
        // callgrind_annotate appends the call count, `name (312x)`: not part of the name.
        match f.rsplit_once(" (") {
            Some((g, n)) if n.ends_with("x)") => g.trim().to_string(),
            _ => f.to_string(),
        }
    };
    let mut by: HashMap<String, (u64, u64)> = HashMap::new();
    for (v, f) in a {
        by.entry(key(f)).or_default().0 += v;
    }
    for (v, f) in b {
        by.entry(key(f)).or_default().1 += v;
    }
    let mut d: Vec<FnDiff> = by
        .into_iter()
        .map(|(function, (x, y))| FnDiff {
            function,
            a_ir_per_iter: x as f64 / a_iters as f64,
            b_ir_per_iter: y as f64 / b_iters as f64,
        })
        .filter(|f| f.a_ir_per_iter != f.b_ir_per_iter)
        .collect();
    d.sort_by(|x, y| {
        let m = |f: &FnDiff| (f.b_ir_per_iter - f.a_ir_per_iter).abs();
        m(y).total_cmp(&m(x))
            .then_with(|| x.function.cmp(&y.function))
    });
    d.truncate(n);
    d
}

/// A file name for one side's count of one case.
fn file_for(out: &Path, label: &str, case: &str) -> PathBuf {
    let safe: String = case
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    out.join(format!("{label}-{safe}.callgrind.out"))
}

/// The component cases of `side` in the request's set and filter.
fn cases_of(side: &Side, req: &Request) -> Result<(Vec<String>, crate::util::build::BuildInfo)> {
    let mut w = Worker::spawn(side)?;
    let cases = w
        .list()?
        .into_iter()
        .filter(|c| !c.end_to_end && req.set.holds(c.set))
        .filter(|c| req.filter.as_ref().is_none_or(|f| f.is_match(&c.id)))
        .map(|c| c.id)
        .collect();
    Ok((cases, w.build.clone()))
}

/// Counts every selected case on each side and judges B against A.
pub fn run(req: &Request) -> Result<Report> {
    let t0 = Instant::now();
    let valgrind = valgrind_version()?;
    let (mut cases, a_build) = cases_of(&req.a, req)?;
    check_build(&req.a.label, &a_build)?;
    let b_build = match &req.b {
        Some(b) => {
            let (bc, bb) = cases_of(b, req)?;
            check_build(&b.label, &bb)?;
            if !a_build.same_code_paths(&bb) {
                bail!(
                    "{} and {} were built differently ({}): their counts are of different code paths",
                    req.a.label,
                    b.label,
                    a_build.differences(&bb).join("; ")
                );
            }
            cases.retain(|c| bc.contains(c));
            Some(bb)
        }
        None => None,
    };
    if cases.is_empty() {
        bail!(
            "no component case of set `{}` matches the filter{}",
            req.set,
            if req.b.is_some() {
                " in both builds"
            } else {
                ""
            }
        );
    }
    std::fs::create_dir_all(&req.out)?;
    let sides: Vec<&Side> = std::iter::once(&req.a).chain(req.b.as_ref()).collect();
    let tasks: Vec<(usize, &Side, &String)> = cases
        .iter()
        .enumerate()
        .flat_map(|(i, c)| sides.iter().map(move |s| (i, *s, c)))
        .collect();
    eprintln!(
        "counting {} case(s) × {} side(s) under callgrind, {} at once, {} iterations each",
        cases.len(),
        sides.len(),
        req.jobs,
        req.iters
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(req.jobs.max(1))
        .build()?;
    let counts: Vec<(usize, String, Count)> = pool.install(|| {
        tasks
            .par_iter()
            .map(|(i, side, case)| {
                let f = file_for(&req.out, &side.label, case);
                let c = count(side, case, req.iters, &f, req.deadline)?;
                eprintln!(
                    "  {}: {case}: {:.0} instructions/iteration ({:.1} s)",
                    side.label, c.ir_per_iter, c.wall_s
                );
                Ok((*i, side.label.clone(), c))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let mut rows = Vec::with_capacity(cases.len());
    for (i, case) in cases.iter().enumerate() {
        let get = |label: &str| {
            counts
                .iter()
                .find(|(j, l, _)| *j == i && l == label)
                .map(|(_, _, c)| c.clone())
        };
        let a = get(&req.a.label).expect("every task returned");
        let b = req.b.as_ref().and_then(|s| get(&s.label));
        let change = b.as_ref().map(|b| change_pct(&a, b));
        let verdict = change.map(|c| judge(c, req.threshold_pct));
        let moved = match (&b, verdict) {
            (Some(b), Some(v)) if v != Verdict::Noise && req.top > 0 => moved_functions(
                &top_functions(&a.callgrind_file, usize::MAX)?,
                &top_functions(&b.callgrind_file, usize::MAX)?,
                a.iters,
                b.iters,
                req.top,
            ),
            _ => Vec::new(),
        };
        rows.push(Row {
            group: case.parse::<CaseId>().ok().map(|c| c.group()),
            case: case.clone(),
            a,
            b,
            change_pct: change,
            verdict,
            moved,
        });
    }
    Ok(Report {
        valgrind,
        a_build: a_build.describe(),
        b_build: b_build.map(|b| b.describe()),
        set: req.set,
        iters: req.iters,
        threshold_pct: req.threshold_pct,
        jobs: req.jobs,
        verdict: pr_verdict(&rows),
        rows,
        wall_s: t0.elapsed().as_secs_f64(),
        blind_spots: BLIND_SPOTS,
    })
}

/// The report as markdown.
pub fn markdown(r: &Report) -> String {
    let mut s = String::from("## Instruction counts (callgrind)\n\n");
    s += &format!(
        "{}; {} iterations per case, one thread; A: {}{}.\n\n",
        r.valgrind,
        r.iters,
        r.a_build,
        r.b_build
            .as_ref()
            .map(|b| format!("; B: {b}"))
            .unwrap_or_default()
    );
    let mut t = Table::new(&["case", "A instr/iter", "B instr/iter", "change", "verdict"]);
    for row in &r.rows {
        t.push([
            row.case.clone(),
            format!("{:.0}", row.a.ir_per_iter),
            row.b
                .as_ref()
                .map(|b| format!("{:.0}", b.ir_per_iter))
                .unwrap_or_else(|| "-".into()),
            row.change_pct
                .map(|c| format!("{c:+.3} %"))
                .unwrap_or_else(|| "-".into()),
            row.verdict
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    s += &t.markdown();
    for row in r.rows.iter().filter(|r| !r.moved.is_empty()) {
        s += &format!(
            "\n{}: functions that moved most (self instructions/iteration)\n\n",
            row.case
        );
        let mut t = Table::new(&["function", "A", "B", "change"]);
        for f in &row.moved {
            t.push([
                f.function.clone(),
                format!("{:.0}", f.a_ir_per_iter),
                format!("{:.0}", f.b_ir_per_iter),
                format!("{:+.0}", f.b_ir_per_iter - f.a_ir_per_iter),
            ]);
        }
        s += &t.markdown();
    }
    if let Some(v) = &r.verdict {
        s += &format!(
            "\n**{}**: {} case(s), {} regression(s) above {} %{}, {} improvement(s).\n",
            if v.pass { "pass" } else { "FAIL" },
            v.cases,
            v.regressions.len(),
            r.threshold_pct,
            if v.regressions.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.regressions.join(", "))
            },
            v.improvements.len()
        );
    }
    s += &format!("\n{:.0} s in all. {}\n", r.wall_s, r.blind_spots);
    s
}

pub fn write_outputs(r: &Report, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)?;
    let (j, m) = (out.join("icount.json"), out.join("icount.md"));
    json::write(&j, r)?;
    std::fs::write(&m, markdown(r))?;
    Ok(vec![j, m])
}
