//! Layer 5, the pipeline parts. Each module defines its cases once: ids, shapes, cost,
//! set-up and run. [`REGISTRY`] lists every part in pipeline order; the bench target, the
//! `cases` and `parts` subcommands, `compare`'s grouping, the fidelity check and CI's group
//! check all read it, so **adding a part touches one list**: write `parts/<name>.rs` with a
//! `specs` generator, add a [`Group`] (and its [`crate::case::Case`] variant) in
//! `case/id.rs`, and add a line here.
//!
//! Shared helpers of the parts: [`quant`] (weight formats and in-situ quantization),
//! [`tensors`] (seeded inputs and weights), [`paged`] (the paged KV-cache layout).
//! Depends on [`crate::engine`], [`crate::case`], [`crate::device`], [`crate::config`] and
//! [`crate::util`].

pub mod attention;
pub mod ffn;
pub mod generation;
pub mod kv_cache;
pub mod paged;
pub mod peers;
pub mod quant;
pub mod quant_matmul;
pub mod small_ops;
pub mod tensors;

use crate::case::{Ctx, Group, Spec};
use crate::config::Preset;
use anyhow::Result;

/// A part's case generator: every case of one preset on one device.
pub type Generator = fn(&Preset, &Ctx) -> Result<Vec<Spec>>;

/// What kind of work a part's cases are, which decides how they are sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One kernel or layer: microseconds to milliseconds, Criterion's auto sampling.
    Component,
    /// Whole requests through the engine: seconds, flat sampling, 10 samples.
    EndToEnd,
    /// The general-framework peers (components and whole models).
    Peers,
}

/// One pipeline part.
#[derive(Debug, Clone, Copy)]
pub struct Part {
    pub group: Group,
    pub kind: Kind,
    pub specs: Generator,
}

/// Every part, in pipeline order (the order of the bench run and of every report).
pub const REGISTRY: &[Part] = &[
    Part {
        group: Group::Attention,
        kind: Kind::Component,
        specs: attention::specs,
    },
    Part {
        group: Group::Ffn,
        kind: Kind::Component,
        specs: ffn::specs,
    },
    Part {
        group: Group::KvCache,
        kind: Kind::Component,
        specs: kv_cache::specs,
    },
    Part {
        group: Group::QuantMatmul,
        kind: Kind::Component,
        specs: quant_matmul::specs,
    },
    Part {
        group: Group::SmallOps,
        kind: Kind::Component,
        specs: small_ops::specs,
    },
    Part {
        group: Group::Generation,
        kind: Kind::EndToEnd,
        specs: generation::specs,
    },
    Part {
        group: Group::Peers,
        kind: Kind::Peers,
        specs: peers::specs,
    },
];

/// The component parts (one kernel or layer per case).
pub fn components() -> impl Iterator<Item = &'static Part> {
    REGISTRY.iter().filter(|p| p.kind == Kind::Component)
}

/// A group's place in the pipeline order (groups not in the registry sort last).
pub fn position(group: Group) -> usize {
    REGISTRY
        .iter()
        .position(|p| p.group == group)
        .unwrap_or(REGISTRY.len())
}

/// Context lengths of `list` that the preset supports (`<= max_context`).
pub fn contexts(p: &Preset, list: &[usize]) -> Vec<usize> {
    list.iter()
        .copied()
        .filter(|&c| c <= p.max_context)
        .collect()
}
