//! The decode-step budget: the component medians that make up one decode step of a preset
//! (attention at the context, q/k/v/o projections, FFN, norms, RoPE, KV append — each times
//! the layer count — plus embedding, final norm, LM head and sampling), summed and set beside
//! the engine's measured end-to-end ms/token. The remainder is engine overhead (scheduling,
//! synchronisation, host work) or a composition the components do not capture.
//!
//! A component recorded as a **stand-in** (the engine runs another path on that device and
//! dtype, e.g. CPU attention) is shown but never summed: its time is not the engine's cost.

use crate::case::{
    AttnPath, CachePolicy, Case, CaseId, Phase, Proj, SamplingMethod, SmallOp, WeightFormat,
    Workload,
};
use crate::device::insitu::Part;
use crate::results::{CaseSummary, Summary};
use crate::util::table::Table;
use anyhow::{bail, Result};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct BudgetRow {
    pub part: String,
    /// The component case measured.
    pub case: String,
    /// How many times one decode step runs it.
    pub count: usize,
    /// Median of one run, ms (None: not in the summary).
    pub each_ms: Option<f64>,
    /// count × each, ms.
    pub total_ms: Option<f64>,
    /// Share of the measured end-to-end ms/token, %.
    pub share_pct: Option<f64>,
    /// Why the case is a stand-in (then it is left out of `components_ms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stand_in: Option<String>,
    /// The in-situ parts this row's component stands for (rows of one set share a figure).
    pub insitu_parts: Vec<Part>,
    /// The engine's own time in those parts, ms per token (on the first row of a set), and
    /// the set's component total against it, % (component / in situ − 1).
    pub insitu_ms: Option<f64>,
    pub agreement_pct: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Budget {
    pub preset: String,
    pub context: usize,
    pub format: String,
    pub rows: Vec<BudgetRow>,
    pub components_ms: f64,
    /// The engine's measured decode ms/token (None if the summary lacks it).
    pub e2e_case: String,
    pub e2e_ms: Option<f64>,
    /// e2e − components: engine overhead, ms and %.
    pub remainder_ms: Option<f64>,
    pub remainder_pct: Option<f64>,
    pub missing: Vec<String>,
    /// In-situ parts no component stands for (model glue, host side, idle, unassigned),
    /// ms per token, when the end-to-end case was attributed.
    pub insitu_rest: Vec<(Part, f64)>,
    /// The in-situ breakdown's own time per token, ms (the attributed run).
    pub insitu_total_ms: Option<f64>,
}

/// The measured case `id`, if the summary has it.
fn measured<'a>(cases: &'a [CaseSummary], id: &str) -> Option<&'a CaseSummary> {
    cases
        .iter()
        .find(|c| c.case == id && c.is_ok() && c.estimates.is_some())
}

/// Builds the budget of one decode step from a summary, for projections and FFN in
/// `format` (`float/f32`, `q4/Q4K`, ...).
pub fn build(
    s: &Summary,
    preset: &crate::config::Preset,
    context: usize,
    format: &WeightFormat,
    e2e_depth: Option<usize>,
    e2e_model: Option<&str>,
) -> Result<Budget> {
    let p = &preset.name;
    let l = preset.layers;
    let gpu = s.device != "cpu";
    let (attn_path, kv_policy) = if gpu {
        (AttnPath::Paged, CachePolicy::Paged)
    } else {
        (AttnPath::Naive, CachePolicy::Grow512)
    };
    let kv_len = crate::parts::kv_cache::LENGTHS
        .iter()
        .copied()
        .filter(|&x| x < context.max(1))
        .max()
        .unwrap_or(0);
    let id = |case: Case| CaseId::preset(p, case);
    let proj = |proj: Proj| {
        id(Case::QuantMatmul {
            format: format.clone(),
            proj,
            m: 1,
        })
    };
    let small = |op: SmallOp| id(Case::SmallOps(op));
    let mut rows = vec![
        (
            "attention",
            id(Case::Attention {
                phase: Phase::Decode,
                path: attn_path,
                ctx: context,
            }),
            l,
            &[Part::Attention][..],
        ),
        ("q projection", proj(Proj::Q), l, &[Part::QkvoProj][..]),
        (
            "k, v projections",
            proj(Proj::KV),
            2 * l,
            &[Part::QkvoProj][..],
        ),
        ("o projection", proj(Proj::O), l, &[Part::QkvoProj][..]),
        (
            "ffn (gate, up, down)",
            id(Case::Ffn {
                format: format.clone(),
                phase: Phase::Decode,
                tokens: 1,
            }),
            l,
            &[Part::FfnGateUp, Part::FfnAct, Part::FfnDown][..],
        ),
        (
            "rmsnorm (2 per layer + final)",
            small(SmallOp::RmsNorm { tokens: 1 }),
            2 * l + 1,
            &[Part::Rmsnorm][..],
        ),
        (
            "rope",
            small(SmallOp::Rope { tokens: 1 }),
            l,
            &[Part::Rope][..],
        ),
        (
            "kv append",
            id(Case::KvCache {
                policy: kv_policy,
                len: kv_len,
            }),
            l,
            &[Part::KvWrite][..],
        ),
        (
            "embedding",
            small(SmallOp::Embedding { tokens: 1 }),
            1,
            &[Part::Embedding][..],
        ),
        (
            "lm head",
            small(SmallOp::LmHead { tokens: 1 }),
            1,
            &[Part::LmHead][..],
        ),
        (
            "sampling (greedy)",
            small(SmallOp::Sampling {
                method: SamplingMethod::Greedy,
            }),
            1,
            &[Part::Sampling][..],
        ),
    ]
    .into_iter()
    .map(|(part, case, count, insitu_parts)| {
        let case = case.to_string();
        let found = measured(&s.cases, &case);
        let each = found.and_then(|c| c.estimates).map(|e| e.median_ns / 1e6);
        BudgetRow {
            part: part.into(),
            case,
            count,
            each_ms: each,
            total_ms: each.map(|e| e * count as f64),
            share_pct: None,
            stand_in: found.and_then(|c| c.stand_in.clone()),
            insitu_parts: insitu_parts.to_vec(),
            insitu_ms: None,
            agreement_pct: None,
        }
    })
    .collect::<Vec<_>>();
    let missing: Vec<String> = rows
        .iter()
        .filter(|r| r.each_ms.is_none())
        .map(|r| r.case.clone())
        .collect();
    if missing.len() == rows.len() {
        bail!("the summary has none of the component cases of preset `{p}` (run cargo bench for it first)");
    }
    let components_ms: f64 = rows
        .iter()
        .filter(|r| r.stand_in.is_none())
        .filter_map(|r| r.total_ms)
        .sum();
    // The engine's decode at the same depth, any model of this preset (synthetic first).
    let depth = e2e_depth.unwrap_or(context);
    let want = Workload::Decode {
        gen: crate::parts::generation::TG,
        depth,
    };
    let e2e = s
        .cases
        .iter()
        .filter(|c| c.preset == *p && c.is_ok())
        .filter_map(|c| {
            let id = c.id()?;
            let model = id.model_name()?.clone();
            (matches!(id.case, Case::Generation(w) if w == want)).then_some((c, model))
        })
        .filter(|(c, model)| match e2e_model {
            Some(m) => c.case.contains(m),
            None => model.isq().is_none(),
        })
        .min_by_key(|(_, model)| !model.is_synthetic())
        .map(|(c, _)| c);
    let e2e_ms = e2e.and_then(|c| Some(c.estimates?.median_ns / 1e6 / c.tokens? as f64));
    for r in rows.iter_mut() {
        r.share_pct = match (r.total_ms, e2e_ms) {
            (Some(t), Some(e)) => Some(100.0 * t / e),
            _ => None,
        };
    }
    // The engine's own split of the same case, part set by part set.
    let ins = e2e.and_then(|c| c.insitu.as_ref());
    let mut insitu_rest = Vec::new();
    if let Some(b) = ins {
        let ms = |parts: &[Part]| -> f64 {
            parts
                .iter()
                .filter_map(|p| b.part(*p))
                .map(|s| s.per_unit_ms)
                .sum()
        };
        let mut seen: Vec<Vec<Part>> = Vec::new();
        for i in 0..rows.len() {
            let set = rows[i].insitu_parts.clone();
            if seen.contains(&set) {
                continue;
            }
            seen.push(set.clone());
            let insitu = ms(&set);
            // Stand-ins time another path: no agreement figure for a set of stand-ins only.
            let summed: Vec<Option<f64>> = rows
                .iter()
                .filter(|r| r.insitu_parts == set && r.stand_in.is_none())
                .map(|r| r.total_ms)
                .collect();
            let comp: Option<f64> = if summed.is_empty() {
                None
            } else {
                summed.into_iter().sum()
            };
            rows[i].insitu_ms = Some(insitu);
            rows[i].agreement_pct = match comp {
                Some(c) if insitu > 0.0 => Some((c / insitu - 1.0) * 100.0),
                _ => None,
            };
        }
        let covered: Vec<Part> = seen.into_iter().flatten().collect();
        insitu_rest = b
            .parts
            .iter()
            .filter(|s| !covered.contains(&s.part))
            .map(|s| (s.part, s.per_unit_ms))
            .collect();
    }
    Ok(Budget {
        insitu_rest,
        insitu_total_ms: ins.map(|b| b.per_unit_ms),
        preset: p.clone(),
        context,
        format: format.to_string(),
        rows,
        components_ms,
        e2e_case: e2e
            .map(|c| c.case.clone())
            .unwrap_or_else(|| format!("generation/{p}-…/{want} (not in summary)")),
        e2e_ms,
        remainder_ms: e2e_ms.map(|e| e - components_ms),
        remainder_pct: e2e_ms.map(|e| 100.0 * (e - components_ms) / e),
        missing,
    })
}

/// The budget as a table: one row per part, then the sum, the engine and the remainder.
pub fn table(b: &Budget) -> Table {
    let mut t = Table::new(&[
        "part",
        "case",
        "×>",
        "each>",
        "total>",
        "share of e2e>",
        "in situ>",
        "components vs in situ>",
    ]);
    let f = |x: Option<f64>, u: &str| {
        x.map(|v| format!("{v:.3}{u}"))
            .unwrap_or_else(|| "–".into())
    };
    for r in &b.rows {
        let part = match r.stand_in {
            Some(_) => format!("{} (stand-in, not summed)", r.part),
            None => r.part.clone(),
        };
        t.push([
            part,
            format!("`{}`", r.case),
            r.count.to_string(),
            f(r.each_ms, " ms"),
            f(r.total_ms, " ms"),
            f(r.share_pct, " %"),
            f(r.insitu_ms, " ms"),
            r.agreement_pct
                .map(|a| format!("{a:+.0} %"))
                .unwrap_or_default(),
        ]);
    }
    t.push([
        "**sum of components**".to_string(),
        String::new(),
        String::new(),
        String::new(),
        format!("**{:.3} ms**", b.components_ms),
        f(b.e2e_ms.map(|e| 100.0 * b.components_ms / e), " %"),
        String::new(),
        String::new(),
    ]);
    t.push([
        "**engine, measured**".to_string(),
        format!("`{}`", b.e2e_case),
        String::new(),
        String::new(),
        format!("**{}**", f(b.e2e_ms, " ms")),
        "100 %".to_string(),
        f(b.insitu_total_ms, " ms"),
        String::new(),
    ]);
    t.push([
        "**remainder (engine overhead)**".to_string(),
        String::new(),
        String::new(),
        String::new(),
        f(b.remainder_ms, " ms"),
        f(b.remainder_pct, " %"),
        String::new(),
        String::new(),
    ]);
    for (part, ms) in &b.insitu_rest {
        t.push([
            format!("in situ only: {part}"),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            format!("{ms:.3} ms"),
            String::new(),
        ]);
    }
    t
}

/// Markdown: one row per part with its share of the measured ms/token.
pub fn markdown(b: &Budget) -> String {
    let mut o = format!(
        "Decode-step budget of `{}` at context {} ({} weights)\n\n",
        b.preset, b.context, b.format
    );
    o.push_str(&table(b).markdown());
    if !b.missing.is_empty() {
        o.push_str(&format!(
            "\nNot in the summary (counted as 0): {}\n",
            b.missing.join(", ")
        ));
    }
    if b.insitu_total_ms.is_none() {
        o.push_str("\nNo in-situ breakdown of the end-to-end case (run it with MISTRALRS_BENCH_INSITU=1).\n");
    } else {
        o.push_str("\nIn situ: the engine's own decode step split by part (`mistral-rs-bench insitu`); a set of rows (the projections, the FFN) shares one figure, on its first row.\n");
    }
    for r in b.rows.iter().filter(|r| r.stand_in.is_some()) {
        o.push_str(&format!(
            "\nStand-in, left out of the sum: `{}`: {}\n",
            r.case,
            r.stand_in.as_deref().unwrap_or_default()
        ));
    }
    o
}
