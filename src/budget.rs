//! The decode-step budget: the component medians that make up one decode step of a preset
//! (attention at the context, q/k/v/o projections, FFN, norms, RoPE, KV append — each times
//! the layer count — plus embedding, final norm, LM head and sampling), summed and set beside
//! the engine's measured end-to-end ms/token. The remainder is engine overhead (scheduling,
//! synchronisation, host work) or a composition the components do not capture.

use crate::summary::{CaseSummary, Summary};
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
}

fn median_ms(cases: &[CaseSummary], id: &str) -> Option<f64> {
    cases
        .iter()
        .find(|c| c.case == id && c.status == "ok")?
        .estimates
        .map(|e| e.median_ns / 1e6)
}

/// Builds the budget of one decode step from a summary. `format` is a `quant_matmul`/`ffn`
/// format name (`f32`, `f16`, `Q4K`, ...) with its class (`float`, `q4`, `q8`).
pub fn build(
    s: &Summary,
    preset: &crate::config::Preset,
    context: usize,
    class: &str,
    format: &str,
    e2e_depth: Option<usize>,
    e2e_model: Option<&str>,
) -> Result<Budget> {
    let p = &preset.name;
    let l = preset.layers;
    let gpu = s.device != "cpu";
    let attn_path = if gpu { "paged" } else { "naive" };
    let kv_policy = if gpu { "paged" } else { "grow512" };
    let kv_len = crate::parts::kv_cache::LENGTHS
        .iter()
        .copied()
        .filter(|&x| x < context.max(1))
        .max()
        .unwrap_or(0);
    let mut rows = vec![
        (
            "attention",
            format!("attention/{p}/decode/{attn_path}/ctx{context}"),
            l,
        ),
        (
            "q projection",
            format!("quant_matmul/{p}/{class}/{format}/q/m1"),
            l,
        ),
        (
            "k, v projections",
            format!("quant_matmul/{p}/{class}/{format}/k_v/m1"),
            2 * l,
        ),
        (
            "o projection",
            format!("quant_matmul/{p}/{class}/{format}/o/m1"),
            l,
        ),
        (
            "ffn (gate, up, down)",
            format!("ffn/{p}/{class}/{format}/decode/t1"),
            l,
        ),
        (
            "rmsnorm (2 per layer + final)",
            format!("small_ops/{p}/rmsnorm/t1"),
            2 * l + 1,
        ),
        ("rope", format!("small_ops/{p}/rope/t1"), l),
        (
            "kv append",
            format!("kv_cache/{p}/{kv_policy}/len{kv_len}"),
            l,
        ),
        ("embedding", format!("small_ops/{p}/embedding/t1"), 1),
        ("lm head", format!("small_ops/{p}/lm_head/t1"), 1),
        (
            "sampling (greedy)",
            format!("small_ops/{p}/sampling/greedy"),
            1,
        ),
    ]
    .into_iter()
    .map(|(part, case, count)| {
        let each = median_ms(&s.cases, &case);
        BudgetRow {
            part: part.into(),
            case,
            count,
            each_ms: each,
            total_ms: each.map(|e| e * count as f64),
            share_pct: None,
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
    let components_ms: f64 = rows.iter().filter_map(|r| r.total_ms).sum();
    // The engine's decode at the same depth, any model of this preset (synthetic first).
    let depth = e2e_depth.unwrap_or(context);
    let suffix = format!("/decode/tg{}/depth{depth}", crate::parts::generation::TG);
    let e2e = s
        .cases
        .iter()
        .filter(|c| {
            c.group == "generation"
                && c.preset == *p
                && c.case.ends_with(&suffix)
                && c.status == "ok"
        })
        .filter(|c| match e2e_model {
            Some(m) => c.case.contains(m),
            None => !c.case.contains("-isq-"),
        })
        .min_by_key(|c| !c.case.contains("-synthetic-"));
    let e2e_ms = e2e.and_then(|c| Some(c.estimates?.median_ns / 1e6 / c.tokens? as f64));
    for r in rows.iter_mut() {
        r.share_pct = match (r.total_ms, e2e_ms) {
            (Some(t), Some(e)) => Some(100.0 * t / e),
            _ => None,
        };
    }
    Ok(Budget {
        preset: p.clone(),
        context,
        format: format!("{class}/{format}"),
        rows,
        components_ms,
        e2e_case: e2e
            .map(|c| c.case.clone())
            .unwrap_or_else(|| format!("generation/{p}-…{suffix} (not in summary)")),
        e2e_ms,
        remainder_ms: e2e_ms.map(|e| e - components_ms),
        remainder_pct: e2e_ms.map(|e| 100.0 * (e - components_ms) / e),
        missing,
    })
}

/// Markdown: one row per part with its share of the measured ms/token.
pub fn markdown(b: &Budget) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Decode-step budget of `{}` at context {} ({} weights)\n",
        b.preset, b.context, b.format
    );
    let _ = writeln!(
        o,
        "| part | case | × | each | total | share of e2e |\n|---|---|---:|---:|---:|---:|"
    );
    let f = |x: Option<f64>, u: &str| {
        x.map(|v| format!("{v:.3}{u}"))
            .unwrap_or_else(|| "–".into())
    };
    for r in &b.rows {
        let _ = writeln!(
            o,
            "| {} | `{}` | {} | {} | {} | {} |",
            r.part,
            r.case,
            r.count,
            f(r.each_ms, " ms"),
            f(r.total_ms, " ms"),
            f(r.share_pct, " %")
        );
    }
    let _ = writeln!(
        o,
        "| **sum of components** | | | | **{:.3} ms** | {} |",
        b.components_ms,
        f(b.e2e_ms.map(|e| 100.0 * b.components_ms / e), " %")
    );
    let _ = writeln!(
        o,
        "| **engine, measured** | `{}` | | | **{}** | 100 % |",
        b.e2e_case,
        f(b.e2e_ms, " ms")
    );
    let _ = writeln!(
        o,
        "| **remainder (engine overhead)** | | | | {} | {} |",
        f(b.remainder_ms, " ms"),
        f(b.remainder_pct, " %")
    );
    if !b.missing.is_empty() {
        let _ = writeln!(
            o,
            "\nNot in the summary (counted as 0): {}",
            b.missing.join(", ")
        );
    }
    o
}
