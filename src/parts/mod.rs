//! The pipeline parts. Each module defines its cases once: set-up, run and cost. The bench
//! files in `benches/` only hand these generators to the harness.

pub mod attention;
pub mod ffn;
pub mod generation;
pub mod kv_cache;
pub mod peers;
pub mod quant_matmul;
pub mod small_ops;

use crate::case::{Ctx, Spec};
use crate::config::Preset;

/// A part's case generator.
pub type Generator = fn(&Preset, &Ctx) -> Vec<Spec>;

/// Every part, by Criterion group name, in pipeline order.
pub const ALL: &[(&str, Generator)] = &[
    ("attention", attention::specs),
    ("ffn", ffn::specs),
    ("kv_cache", kv_cache::specs),
    ("quant_matmul", quant_matmul::specs),
    ("small_ops", small_ops::specs),
];

/// The end-to-end group (listed apart: its cases load whole models).
pub const GENERATION: (&str, Generator) = ("generation", generation::specs);

/// The general-framework peers (candle-transformers and plain candle ops), issue 6.
pub const PEERS: (&str, Generator) = ("peers", peers::specs);

/// Context lengths of `list` that the preset supports (`<= max_context`).
pub fn contexts(p: &Preset, list: &[usize]) -> Vec<usize> {
    list.iter()
        .copied()
        .filter(|&c| c <= p.max_context)
        .collect()
}
