//! Case sets: which cases a run measures when nothing narrower is asked for.
//!
//! - [`CaseSet::Quick`] (the `quick` profile, ≤ 3 minutes on the 2-core CPU): every part at
//!   one shape per phase, each 4- and 8-bit format at the decode shape, the end-to-end kinds
//!   at small shapes (128-token prompts, 32 new tokens), no real GGUF model.
//! - [`CaseSet::Default`] (`cargo bench`, ≤ 10 minutes): adds each part's smallest and
//!   largest context, prefill at its largest size, the longest decode at its deepest context
//!   and the real model.
//! - [`CaseSet::Full`]: every case the registry generates.
//!
//! The case list does not shrink: `--list`, a filter and the smoke run (`--test`) select
//! from `Full` ([`CaseSet::for_run`]). Membership is decided here, for every generated id at
//! once, because "smallest" and "largest" are relative to what the part generated on this
//! device (GPU lists are longer).

use super::id::{Case, CaseId, PeerCase, Phase, Proj, SamplingMethod, SmallOp, Subject, Workload};
use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// Environment variable that picks the set.
pub const SET_ENV: &str = "MISTRALRS_BENCH_SET";

/// A run's case set, smallest first: a case of a set is in every larger one.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    strum::Display,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CaseSet {
    Quick,
    Default,
    Full,
}

impl CaseSet {
    /// The set a run measures: `MISTRALRS_BENCH_SET` when given; otherwise `Full` when the
    /// command line narrows the run itself (a filter, `--list`, `--test`), else the
    /// profile's own set (`quick` → `Quick`, `default` → `Default`, `full` → `Full`).
    pub fn for_run(profile_name: &str, narrowed: bool) -> Result<CaseSet> {
        match std::env::var(SET_ENV).ok().filter(|v| !v.is_empty()) {
            Some(v) => v
                .parse()
                .or_else(|_| bail!("{SET_ENV}=`{v}`: use quick, default or full")),
            None if narrowed => Ok(CaseSet::Full),
            None => Ok(match profile_name {
                "quick" => CaseSet::Quick,
                "full" => CaseSet::Full,
                _ => CaseSet::Default,
            }),
        }
    }

    /// Whether a case whose smallest set is `smallest` runs in this set.
    pub fn holds(self, smallest: CaseSet) -> bool {
        smallest <= self
    }
}

/// A key under which "smallest" and "largest" are compared: the id with its size taken out.
/// Decode's key holds its generated length, so each length has its own depth range;
/// concurrency 1 (a single request, the decode case's twin) has no family.
fn family(id: &CaseId) -> Option<(String, usize)> {
    let s = id.subject.to_string();
    Some(match &id.case {
        Case::Attention { phase, path, ctx } => (format!("attn/{s}/{phase}/{path}"), *ctx),
        Case::Ffn {
            format,
            phase,
            tokens,
        } => (format!("ffn/{s}/{format}/{phase}"), *tokens),
        Case::KvCache { policy, len } => (format!("kv/{s}/{policy}"), *len),
        Case::QuantMatmul { format, proj, m } => (format!("qmm/{s}/{format}/{proj}"), *m),
        Case::Generation(Workload::Prefill { prompt }) => (format!("pp/{s}"), *prompt),
        Case::Generation(Workload::Decode { gen, depth }) => (format!("tg/{s}/{gen}"), *depth),
        Case::Generation(Workload::Concurrent { requests }) if *requests > 1 => {
            (format!("c/{s}"), *requests)
        }
        _ => return None,
    })
}

/// Where an id sits among the cases generated beside it.
#[derive(Debug, Clone, Copy, Default)]
struct Place {
    /// Its family's smallest size.
    lo: bool,
    /// Its family's largest size.
    hi: bool,
    /// A decode case shorter than the longest decode of its subject (the quick shape).
    short_decode: bool,
}

/// The smallest set of each id (same order as `ids`).
pub fn assign(ids: &[CaseId]) -> Vec<CaseSet> {
    let mut range: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut longest: BTreeMap<String, usize> = BTreeMap::new();
    for id in ids {
        if let Some((k, n)) = family(id) {
            let e = range.entry(k).or_insert((n, n));
            e.0 = e.0.min(n);
            e.1 = e.1.max(n);
        }
        if let Case::Generation(Workload::Decode { gen, .. }) = &id.case {
            let e = longest.entry(id.subject.to_string()).or_default();
            *e = (*e).max(*gen);
        }
    }
    ids.iter()
        .map(|id| {
            let mut place = family(id)
                .and_then(|(k, n)| range.get(&k).map(|&(a, b)| (n == a, n == b)))
                .map(|(lo, hi)| Place {
                    lo,
                    hi,
                    ..Place::default()
                })
                .unwrap_or_default();
            if let Case::Generation(Workload::Decode { gen, .. }) = &id.case {
                place.short_decode = longest
                    .get(&id.subject.to_string())
                    .is_some_and(|&g| *gen < g);
            }
            smallest_set(id, place)
        })
        .collect()
}

/// One id's smallest set, given its place among the cases generated beside it.
fn smallest_set(id: &CaseId, p: Place) -> CaseSet {
    use CaseSet::*;
    let (lo, hi) = (p.lo, p.hi);
    let ends = |quick: bool| match (quick, lo || hi) {
        (true, _) => Quick,
        (false, true) => Default,
        (false, false) => Full,
    };
    match &id.case {
        // Each phase at its smallest context in the quick set, both ends in the default one.
        Case::Attention { .. } => ends(lo),
        Case::Ffn { phase, .. } => match phase {
            Phase::Decode => Quick,
            Phase::Prefill if hi => Default,
            Phase::Prefill => Full,
        },
        // The regrowth boundary of the growing cache (511 → 512) is its telling shape.
        Case::KvCache { len, .. } => match (hi, lo, *len) {
            (true, _, _) => Quick,
            (_, true, _) | (_, _, 511 | 512) => Default,
            _ => Full,
        },
        // Every format at the decode shape (one row through the FFN's largest weight), and
        // at its largest row count in the default set.
        Case::QuantMatmul { proj, .. } => match (proj, lo, hi) {
            (Proj::GateUp, true, _) => Quick,
            (Proj::GateUp, _, true) => Default,
            _ => Full,
        },
        Case::SmallOps(op) => match op {
            SmallOp::Sampling {
                method: SamplingMethod::Greedy,
            } => Quick,
            SmallOp::Sampling { .. } => Default,
            SmallOp::RmsNorm { tokens }
            | SmallOp::Rope { tokens }
            | SmallOp::Embedding { tokens }
            | SmallOp::LmHead { tokens } => {
                if *tokens == 1 {
                    Quick
                } else {
                    Default
                }
            }
        },
        Case::Generation(w) => generation_set(id, w, p),
        Case::Peers { what, .. } => match what {
            PeerCase::Workload(_) => Full,
            _ => Default,
        },
    }
}

/// End to end: the synthetic model at small shapes in the quick set, at the shapes of
/// record in the default set; the real GGUF model only from the default set on; ISQ
/// variants (opt-in) only in the full set.
fn generation_set(id: &CaseId, w: &Workload, p: Place) -> CaseSet {
    use CaseSet::*;
    let (synthetic, real) = match &id.subject {
        Subject::Model(m) if m.isq().is_some() => return Full,
        Subject::Model(m) => (m.is_synthetic(), !m.is_synthetic()),
        Subject::Preset(_) => (true, false),
    };
    match w {
        Workload::Prefill { .. } if synthetic && p.lo => Quick,
        Workload::Prefill { .. } if synthetic && p.hi => Default,
        Workload::Decode { depth: 0, .. } if synthetic && p.short_decode => Quick,
        // The longest decode at its deepest context (depth 0 is the quick shape's).
        Workload::Decode { .. } if synthetic && !p.short_decode && p.hi => Default,
        Workload::Ttft { .. } if synthetic => Quick,
        Workload::Concurrent { .. } if synthetic && p.lo => Quick,
        Workload::Prefill { .. } if real && p.lo => Default,
        Workload::Decode { depth: 0, .. } if real && !p.short_decode => Default,
        _ => Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<CaseId> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn ends_of_each_family() {
        let v = ids(&[
            "attention/p/decode/naive/ctx512",
            "attention/p/decode/naive/ctx2048",
            "attention/p/decode/naive/ctx8192",
            "kv_cache/p/grow512/len0",
            "kv_cache/p/grow512/len511",
            "kv_cache/p/grow512/len2047",
            "kv_cache/p/grow512/len8191",
            "quant_matmul/p/q4/Q4K/gate_up/m1",
            "quant_matmul/p/q4/Q4K/gate_up/m4",
            "quant_matmul/p/q4/Q4K/gate_up/m128",
            "quant_matmul/p/q4/Q4K/o/m1",
        ]);
        use CaseSet::*;
        assert_eq!(
            assign(&v),
            vec![Quick, Full, Default, Default, Default, Full, Quick, Quick, Full, Default, Full]
        );
    }

    #[test]
    fn end_to_end_sets() {
        let v = ids(&[
            "generation/m-synthetic-bf16/prefill/pp128",
            "generation/m-synthetic-bf16/prefill/pp512",
            "generation/m-synthetic-bf16/decode/tg32/depth0",
            "generation/m-synthetic-bf16/decode/tg128/depth0",
            "generation/m-synthetic-bf16/decode/tg128/depth512",
            "generation/m-synthetic-bf16/concurrent/c1",
            "generation/m-synthetic-bf16/concurrent/c4",
            "generation/m-synthetic-bf16/concurrent/c16",
            "generation/Real.Q4_1/prefill/pp128",
            "generation/Real.Q4_1/decode/tg32/depth0",
            "generation/Real.Q4_1/decode/tg128/depth0",
            "generation/m-synthetic-bf16-isq-Q4K/decode/tg32/depth0",
        ]);
        use CaseSet::*;
        assert_eq!(
            assign(&v),
            vec![
                // tg128/depth0 is neither the quick shape nor the deepest decode: full only.
                Quick, Default, Quick, Full, Default, Full, Quick, Full, Default, Full, Default,
                Full
            ]
        );
    }

    #[test]
    fn sets_nest() {
        assert!(CaseSet::Full.holds(CaseSet::Quick));
        assert!(CaseSet::Default.holds(CaseSet::Default));
        assert!(!CaseSet::Quick.holds(CaseSet::Default));
    }
}
