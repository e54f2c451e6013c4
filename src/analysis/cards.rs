//! Two cards side by side (issue 14: the H100 beside the H200): every case measured on both,
//! the ratio of its times, and the ratio the card's measured ceilings predict for it.
//!
//! The model, per component case: its time on the reference card B splits into a part that
//! moves with a ceiling and a part that does not, `t = ρ·t + (1 − ρ)·t`, where `ρ` is the
//! case's share of B's ceiling on its binding roof (bytes against the copy bandwidth, or
//! FLOPs against the matmul rate, whichever share is higher; at most 1). On card A the roof
//! part scales with the ceilings' ratio `k` (B's ceiling over A's) and the rest — kernel
//! launches, synchronisation, host work — stays, so the predicted `t_A / t_B` is
//! `ρ·k + (1 − ρ)`. A ratio within ±[`EXPLAINED_PCT`] % of that prediction is explained by
//! the named term; one outside is listed as not explained (with the prediction it missed).
//! A case whose bytes fit the last-level cache of either card is not held to the bandwidth
//! roof (its traffic never reaches device memory).
//!
//! End-to-end cases are split from the engine's own run when both sides were attributed in
//! situ on the GPU: device-busy time (kernels and copies on CUPTI's timeline) against device
//! idle (the device waiting for the host), each per token on both cards, so a ratio reads as
//! "the device work moved by x, the host's share by y".
//!
//! A card may be given as several summaries (runs of one card class); the first that holds
//! a case gives it, and the first with ceilings gives the card's ceilings. Each side's suite
//! commits are listed: a ratio compares two cards only where the case's code did not change
//! between them, which the summaries cannot show (a case keeps its id and cost when its
//! set-up changes), so sides of different commits are said to be so in the report.

use crate::results::{CaseSummary, Summary};
use crate::util::table::Table;
use anyhow::{bail, Result};
use serde::Serialize;

/// How far a measured ratio may be from the prediction and still be explained by it, %.
pub const EXPLAINED_PCT: f64 = 10.0;

/// A roof share at or above this is called bound by that roof.
const BOUND_SHARE: f64 = 0.5;

/// What the model says dominates a case's time on the reference card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Term {
    /// Bytes against the copy bandwidth (share ≥ 50 %).
    Bandwidth,
    /// FLOPs against the matmul rate (share ≥ 50 %).
    Flops,
    /// Launch, synchronisation and host cost: neither roof reaches 50 %.
    FixedCost,
    /// Bytes that fit the cache: a bandwidth share says nothing about device memory.
    Cache,
}

/// One component case on both cards.
#[derive(Debug, Clone, Serialize)]
pub struct CardRow {
    pub case: String,
    pub a_ns: f64,
    pub b_ns: f64,
    /// t_A / t_B.
    pub ratio: f64,
    /// The case's share of B's binding ceiling, 0–1.
    pub roof_share: f64,
    pub term: Term,
    /// ρ·k + (1 − ρ).
    pub predicted: f64,
    /// |ratio / predicted − 1| ≤ EXPLAINED_PCT %.
    pub explained: bool,
}

/// One end-to-end case on both cards, with its in-situ device split where both have one.
#[derive(Debug, Clone, Serialize)]
pub struct E2eRow {
    pub case: String,
    pub a_ns: f64,
    pub b_ns: f64,
    pub ratio: f64,
    pub unit: Option<String>,
    /// Device busy and device idle, ms per unit, on A and on B (CUPTI's timeline).
    pub busy_ms: Option<[f64; 2]>,
    pub idle_ms: Option<[f64; 2]>,
    /// The in-situ parts that moved most, ms per unit on A and B (largest |Δ| first, at most 4).
    pub top_parts: Vec<(String, f64, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cards {
    pub a: String,
    pub b: String,
    /// The suite commits each side's summaries were measured with (from their `build`).
    pub a_commits: Vec<String>,
    pub b_commits: Vec<String>,
    /// B's ceiling over A's: copy bandwidth and matmul rate.
    pub k_bandwidth: f64,
    pub k_flops: f64,
    pub rows: Vec<CardRow>,
    pub e2e: Vec<E2eRow>,
    /// Cases measured on one card only.
    pub only_a: usize,
    pub only_b: usize,
}

/// A side's measured cases: the first summary holding a case gives it.
fn measured(side: &[Summary]) -> Vec<&CaseSummary> {
    let mut out: Vec<&CaseSummary> = Vec::new();
    for s in side {
        for c in s
            .cases
            .iter()
            .filter(|c| c.is_ok() && c.median_ns().is_some())
        {
            if !out.iter().any(|o| o.case == c.case) {
                out.push(c);
            }
        }
    }
    out
}

/// The distinct suite commits of a side's summaries (`unknown` for one without a build).
fn commits(side: &[Summary]) -> Vec<String> {
    let mut v: Vec<String> = side
        .iter()
        .map(|s| {
            s.build
                .as_ref()
                .map(|b| b.git_commit.clone())
                .unwrap_or_else(|| "unknown".into())
        })
        .collect();
    v.dedup();
    v
}

/// The model of one component case (see the module's text); None when the case has no cost.
pub fn predict(
    c_b: &CaseSummary,
    c_a: &CaseSummary,
    k_bw: f64,
    k_fl: f64,
) -> Option<(f64, Term, f64)> {
    if c_b.flops == 0 && c_b.bytes == 0 {
        return None;
    }
    let cached = c_b.fits_in_cache == Some(true) || c_a.fits_in_cache == Some(true);
    let bw = if cached {
        0.0
    } else {
        c_b.pct_bw_ceiling.unwrap_or(0.0) / 100.0
    };
    let fl = c_b.pct_flop_ceiling.unwrap_or(0.0) / 100.0;
    let (share, k, roof) = if fl > bw {
        (fl, k_fl, Term::Flops)
    } else {
        (bw, k_bw, Term::Bandwidth)
    };
    let rho = share.clamp(0.0, 1.0);
    let term = if rho >= BOUND_SHARE {
        roof
    } else if cached {
        Term::Cache
    } else {
        Term::FixedCost
    };
    Some((rho, term, rho * k + (1.0 - rho)))
}

/// Sets card A beside card B (B is the reference the roof shares are read on); each side is
/// one or more summaries of its card.
pub fn build(a: &[Summary], b: &[Summary]) -> Result<Cards> {
    let ceilings = |side: &[Summary]| side.iter().find_map(|s| s.ceilings.clone());
    let (Some(ca), Some(cb)) = (ceilings(a), ceilings(b)) else {
        bail!("each card needs a summary with its device's ceilings (`mistral-rs-bench ceilings`)");
    };
    if ca.copy_gbps <= 0.0 || ca.matmul_gflops <= 0.0 {
        bail!("card A's ceilings are not positive: {ca:?}");
    }
    let k_bw = cb.copy_gbps / ca.copy_gbps;
    let k_fl = cb.matmul_gflops / ca.matmul_gflops;
    let (ma, mb) = (measured(a), measured(b));
    let mut rows = Vec::new();
    let mut e2e = Vec::new();
    let mut only_a = 0;
    for x in &ma {
        let Some(y) = mb.iter().find(|y| y.case == x.case) else {
            only_a += 1;
            continue;
        };
        let (a_ns, b_ns) = (
            x.median_ns().expect("measured"),
            y.median_ns().expect("measured"),
        );
        let ratio = a_ns / b_ns;
        if x.tokens.is_some() || x.group == "generation" {
            e2e.push(e2e_row(x, y, a_ns, b_ns));
            continue;
        }
        let Some((roof_share, term, predicted)) = predict(y, x, k_bw, k_fl) else {
            continue;
        };
        rows.push(CardRow {
            case: x.case.clone(),
            a_ns,
            b_ns,
            ratio,
            roof_share,
            term,
            predicted,
            explained: (ratio / predicted - 1.0).abs() * 100.0 <= EXPLAINED_PCT,
        });
    }
    let only_b = mb
        .iter()
        .filter(|y| !ma.iter().any(|x| x.case == y.case))
        .count();
    if rows.is_empty() && e2e.is_empty() {
        bail!("the two cards' summaries share no measured case");
    }
    Ok(Cards {
        a: ca.device_name.clone(),
        b: cb.device_name.clone(),
        a_commits: commits(a),
        b_commits: commits(b),
        k_bandwidth: k_bw,
        k_flops: k_fl,
        rows,
        e2e,
        only_a,
        only_b,
    })
}

fn e2e_row(x: &CaseSummary, y: &CaseSummary, a_ns: f64, b_ns: f64) -> E2eRow {
    let (bx, by) = (x.insitu.as_ref(), y.insitu.as_ref());
    let per_unit = |b: &crate::device::insitu::Breakdown, s: f64| 1e3 * s / b.units.max(1) as f64;
    let gpu = match (bx, by) {
        (Some(p), Some(q)) => match (&p.gpu, &q.gpu) {
            (Some(g), Some(h)) => Some((
                [per_unit(p, g.busy_s), per_unit(q, h.busy_s)],
                [per_unit(p, g.idle_s), per_unit(q, h.idle_s)],
            )),
            _ => None,
        },
        _ => None,
    };
    let mut top_parts = Vec::new();
    if let (Some(p), Some(q)) = (bx, by) {
        let mut parts: Vec<_> = p.parts.iter().chain(&q.parts).map(|s| s.part).collect();
        parts.sort();
        parts.dedup();
        let ms = |b: &crate::device::insitu::Breakdown, part| {
            b.part(part).map(|s| s.per_unit_ms).unwrap_or(0.0)
        };
        let mut v: Vec<(String, f64, f64)> = parts
            .into_iter()
            .map(|part| (part.to_string(), ms(p, part), ms(q, part)))
            .collect();
        v.sort_by(|l, r| (r.1 - r.2).abs().total_cmp(&(l.1 - l.2).abs()));
        v.truncate(4);
        top_parts = v;
    }
    E2eRow {
        case: x.case.clone(),
        a_ns,
        b_ns,
        ratio: a_ns / b_ns,
        unit: bx.or(by).map(|b| b.unit.clone()),
        busy_ms: gpu.map(|g| g.0),
        idle_ms: gpu.map(|g| g.1),
        top_parts,
    }
}

/// The component rows as a table.
pub fn table(c: &Cards) -> Table {
    let mut t = Table::new(&[
        "case",
        "A>",
        "B>",
        "A / B>",
        "roof share on B>",
        "term",
        "predicted>",
        "explained",
    ]);
    for r in &c.rows {
        t.push([
            r.case.clone(),
            crate::util::fmt::fmt_ns(r.a_ns),
            crate::util::fmt::fmt_ns(r.b_ns),
            format!("{:.3}", r.ratio),
            format!("{:.0} %", 100.0 * r.roof_share),
            r.term.to_string(),
            format!("{:.3}", r.predicted),
            (if r.explained { "yes" } else { "no" }).to_string(),
        ]);
    }
    t
}

/// The end-to-end rows as a table.
pub fn e2e_table(c: &Cards) -> Table {
    let mut t = Table::new(&[
        "case",
        "A>",
        "B>",
        "A / B>",
        "device busy A / B, ms per unit>",
        "device idle A / B>",
        "parts that moved most (A / B, ms)",
    ]);
    let pair = |v: Option<[f64; 2]>| {
        v.map(|[a, b]| format!("{a:.3} / {b:.3}"))
            .unwrap_or_else(|| "–".into())
    };
    for r in &c.e2e {
        t.push([
            r.case.clone(),
            crate::util::fmt::fmt_ns(r.a_ns),
            crate::util::fmt::fmt_ns(r.b_ns),
            format!("{:.3}", r.ratio),
            pair(r.busy_ms),
            pair(r.idle_ms),
            r.top_parts
                .iter()
                .map(|(p, a, b)| format!("{p} {a:.3} / {b:.3}"))
                .collect::<Vec<_>>()
                .join("; "),
        ]);
    }
    t
}

/// The whole side-by-side as Markdown: the ceilings' ratios, a count per term, both tables.
pub fn markdown(c: &Cards) -> String {
    let mut s = format!(
        "# Two cards: A = {} beside B = {}\n\n\
         B's ceilings over A's: copy bandwidth ×{:.3}, matmul rate ×{:.3}. A component's \
         predicted A / B is ρ·k + (1 − ρ), ρ its share of B's binding ceiling; explained = \
         within ±{EXPLAINED_PCT:.0} %.\n\n",
        c.a, c.b, c.k_bandwidth, c.k_flops
    );
    s += &format!(
        "Suite commits: A {}, B {}.{}\n\n",
        c.a_commits.join(", "),
        c.b_commits.join(", "),
        if c.a_commits == c.b_commits {
            ""
        } else {
            " **The two cards were measured with different suite commits**: a case whose \
             set-up or timing changed between them compares code as well as cards."
        }
    );
    let mut terms = Table::new(&["term", "cases>", "explained>", "median A / B>"]);
    for term in [Term::Bandwidth, Term::Flops, Term::FixedCost, Term::Cache] {
        let of: Vec<&CardRow> = c.rows.iter().filter(|r| r.term == term).collect();
        if of.is_empty() {
            continue;
        }
        let ratios: Vec<f64> = of.iter().map(|r| r.ratio).collect();
        terms.push([
            term.to_string(),
            of.len().to_string(),
            of.iter().filter(|r| r.explained).count().to_string(),
            format!("{:.3}", crate::util::stats::median(&ratios)),
        ]);
    }
    s += &terms.markdown();
    s += "\n## Components\n\n";
    s += &table(c).markdown();
    if !c.e2e.is_empty() {
        s += "\n## End to end (in situ where both cards were attributed)\n\n";
        s += &e2e_table(c).markdown();
    }
    s += &format!(
        "\n{} cases measured on A only, {} on B only.\n",
        c.only_a, c.only_b
    );
    s
}
