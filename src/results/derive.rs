//! Figures derived from several cases of a summary.

use super::schema::CaseSummary;
use crate::case::{AttnPath, Case, Phase, Workload};
use std::collections::BTreeMap;

/// The engine's context slope per model: decode ms/token at each depth, and
/// `(ms/token at the deepest depth − at depth 0) / depth × 1000` (ms per 1k tokens of
/// context), beside the same slope from the components (attention decode, times layers)
/// for the preset's shapes.
pub fn derive(cases: &[CaseSummary], layers: &BTreeMap<String, usize>) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    let mut by_model: BTreeMap<String, Vec<(usize, f64, String)>> = BTreeMap::new();
    for c in cases.iter().filter(|c| c.is_ok()) {
        let Some(id) = c.id() else { continue };
        let (Case::Generation(Workload::Decode { depth, .. }), Some(model)) =
            (&id.case, id.model_name())
        else {
            continue;
        };
        let (Some(e), Some(t)) = (c.estimates, c.tokens) else {
            continue;
        };
        by_model.entry(model.to_string()).or_default().push((
            *depth,
            e.median_ns / 1e6 / t as f64,
            c.preset.clone(),
        ));
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
            AttnPath::Paged
        } else {
            AttnPath::Naive
        };
        let attn: BTreeMap<usize, f64> = cases
            .iter()
            .filter(|c| c.preset == preset)
            .filter_map(|c| {
                let id = c.id()?;
                match id.case {
                    Case::Attention {
                        phase: Phase::Decode,
                        path: p,
                        ctx,
                    } if p == path && id.preset_name() == Some(preset.as_str()) => {
                        Some((ctx, c.estimates?.median_ns / 1e6))
                    }
                    _ => None,
                }
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
                "component_note": match path {
                    AttnPath::Naive => "naive attention decode x layers (the CPU engine runs its private flash kernel instead)",
                    _ => "paged attention decode x layers (the path the GPU engine runs here)",
                },
            }),
        );
    }
    serde_json::json!({ "context_slope": out })
}
