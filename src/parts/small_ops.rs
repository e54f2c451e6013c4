//! `small_ops`: the per-token pieces around attention and FFN: RMSNorm
//! (`layers::RmsNorm`), RoPE (`layers::RotaryEmbedding`, GPT-NeoX layout as llama uses it),
//! embedding lookup (`layers::embedding`), the LM-head projection (an unquantized
//! `QuantMethod` over the vocabulary), and sampling the next token over the vocabulary.
//!
//! Sampling mirrors mistralrs-core 0.8.1 `sampler.rs` (`Sampler` is private there): logits
//! are copied to the host (`to_vec1`), then greedy takes the arg-max (`sample_argmax`) and
//! top-p sorts, cuts at cumulative probability p and draws (`sample_top_kp_min_p`).

use crate::api::{Embedding, RopePositions};
use crate::case::{elem_bytes, Case, CaseId, Cost, Ctx, Runner, SamplingMethod, SmallOp, Spec};
use crate::config::{dtype_name, Preset};
use crate::parts::quant::{self, Format};
use crate::parts::tensors::{randn, token_ids, var_builder};
use anyhow::Result;
use candle_core::{DType, Device, Module, Tensor};
use mistralrs_core::layers::{RmsNorm, RotaryEmbedding};
use mistralrs_quant::QuantMethod;
use rand::{distr::weighted::WeightedIndex, prelude::Distribution, rngs::StdRng, SeedableRng};
use std::collections::HashMap;
use std::sync::Arc;

/// Token counts for the row-wise ops: decode and a 512-token prefill.
pub const TOKENS: &[usize] = &[1, 512];
/// Top-p sampling parameters.
pub const TOP_P: f32 = 0.9;
pub const TEMPERATURE: f32 = 0.7;

/// RMSNorm over `t` tokens: ~4 FLOPs per element; reads x and the weight, writes y.
pub fn rmsnorm_cost(p: &Preset, t: usize, dt: DType) -> Cost {
    let (tt, h, e) = (t as u64, p.hidden as u64, elem_bytes(dt));
    Cost::new(4 * tt * h, (2 * tt * h + h) * e)
}

/// The LM head for one token: `[1, hidden] · [vocab, hidden]ᵀ`.
pub fn lm_head_cost(p: &Preset, dt: DType) -> Cost {
    let (h, v, e) = (p.hidden as u64, p.vocab as u64, elem_bytes(dt));
    Cost::matmul(1, v, h, e, v * h * e)
}

pub fn lm_head_shape(p: &Preset, dt: DType) -> String {
    format!(
        "x=[1,1,{}] W=[{},{}] {}",
        p.hidden,
        p.vocab,
        p.hidden,
        dtype_name(dt)
    )
}

/// The id of a small op of preset `p`.
fn id(p: &Preset, op: SmallOp) -> CaseId {
    CaseId::preset(&p.name, Case::SmallOps(op))
}

pub fn specs(p: &Preset, ctx: &Ctx) -> anyhow::Result<Vec<Spec>> {
    let mut out = Vec::new();
    let dt = ctx.dtype;
    let e = elem_bytes(dt);
    let (h, v) = (p.hidden as u64, p.vocab as u64);
    for &t in TOKENS {
        let tt = t as u64;
        let preset = p.clone();
        out.push(Spec::new(
            id(p, SmallOp::RmsNorm { tokens: t }),
            dt,
            format!("x=[1,{t},{}] {}", p.hidden, dtype_name(dt)),
            rmsnorm_cost(p, t, dt),
            rmsnorm_cost(p, t, dt).bytes,
            Box::new(move |dev: &Device| {
                Ok(Box::new(Op::rmsnorm(&preset, t, dt, dev)?) as Box<dyn Runner>)
            }),
        ));
        let preset = p.clone();
        let qk = ((p.heads + p.kv_heads) * p.head_dim) as u64;
        out.push(Spec::new(
            id(p, SmallOp::Rope { tokens: t }),
            dt,
            format!(
                "q=[1,{},{t},{}] k=[1,{},{t},{}] {}",
                p.heads,
                p.head_dim,
                p.kv_heads,
                p.head_dim,
                dtype_name(dt)
            ),
            Cost::new(3 * tt * qk, (2 * tt * qk + tt * p.head_dim as u64) * e),
            (p.max_context * p.head_dim) as u64 * e + 4 * tt * qk * e,
            Box::new(move |dev: &Device| {
                Ok(Box::new(Op::rope(&preset, t, dt, dev)?) as Box<dyn Runner>)
            }),
        ));
        let preset = p.clone();
        out.push(Spec::new(
            id(p, SmallOp::Embedding { tokens: t }),
            dt,
            format!(
                "ids=[1,{t}] table=[{},{}] {}",
                p.vocab,
                p.hidden,
                dtype_name(dt)
            ),
            Cost::new(0, 2 * tt * h * e + 4 * tt),
            v * h * e + tt * h * e,
            Box::new(move |dev: &Device| {
                Ok(Box::new(Op::embedding(&preset, t, dt, dev)?) as Box<dyn Runner>)
            }),
        ));
    }
    let preset = p.clone();
    out.push(Spec::new(
        id(p, SmallOp::LmHead { tokens: 1 }),
        dt,
        lm_head_shape(p, dt),
        lm_head_cost(p, dt),
        2 * v * h * e,
        Box::new(move |dev: &Device| {
            Ok(Box::new(Op::lm_head(&preset, dt, dev)?) as Box<dyn Runner>)
        }),
    ));
    for method in [SamplingMethod::Greedy, SamplingMethod::TopP] {
        let preset = p.clone();
        let flops = match method {
            SamplingMethod::Greedy => v,
            SamplingMethod::TopP => v * 8,
        };
        out.push(Spec::new(
            id(p, SmallOp::Sampling { method }),
            DType::F32,
            format!("logits=[{}] f32", p.vocab),
            Cost::new(flops, v * 4),
            v * 12,
            Box::new(move |dev: &Device| {
                Ok(Box::new(Op::sampling(&preset, method, dev)?) as Box<dyn Runner>)
            }),
        ));
    }
    Ok(out)
}

enum Op {
    RmsNorm {
        norm: RmsNorm,
        x: Tensor,
    },
    Rope {
        rope: RotaryEmbedding,
        q: Tensor,
        k: Tensor,
        pos: RopePositions,
    },
    Embedding {
        emb: Embedding,
        ids: Tensor,
        dtype: DType,
    },
    LmHead {
        w: Arc<dyn QuantMethod>,
        x: Tensor,
    },
    Sampling {
        logits: Tensor,
        method: SamplingMethod,
        rng: Box<StdRng>,
    },
}

impl Op {
    fn rmsnorm(p: &Preset, t: usize, dt: DType, dev: &Device) -> Result<Self> {
        let w = (randn(p.hidden, 0.02, 31, DType::F32, dev)? + 1.0)?.to_dtype(dt)?;
        Ok(Op::RmsNorm {
            norm: RmsNorm::from_w(w, p.rms_eps)?,
            x: randn((1, t, p.hidden), 1.0, 32, dt, dev)?,
        })
    }

    fn rope(p: &Preset, t: usize, dt: DType, dev: &Device) -> Result<Self> {
        let rope = RotaryEmbedding::new(
            p.rope_theta as f32,
            p.head_dim,
            p.max_context,
            dev,
            true,
            dt,
        )?;
        // q and k in the layout the engine's attention hands to RoPE (`models/llama.rs`,
        // `Attention::forward`, 0.8.1 lines 93-107, 0.9.2 lines 80-95): a prefill's are the
        // projection's `(b, seq, heads, d)` rows viewed as `(b, heads, seq, d)` (a transpose,
        // not a copy), a decode token's a plain reshape. Contiguous `(b, heads, seq, d)` inputs
        // (this case before 2026-12-03) made 0.9.2's kernel, which takes token-major rows,
        // copy q and k first (2 × 25 µs at llama-3-8b t512 on an H200, ncu), work the engine
        // never does, and spared 0.8.1 the copy its kernel needs.
        let qk = |heads: usize, seed: u64| -> Result<Tensor> {
            Ok(if t == 1 {
                randn((1, heads, t, p.head_dim), 1.0, seed, dt, dev)?
            } else {
                randn((1, t, heads, p.head_dim), 1.0, seed, dt, dev)?.transpose(1, 2)?
            })
        };
        let q = qk(p.heads, 33)?;
        let k = qk(p.kv_heads, 34)?;
        // Decode rotates position 511 (a typical depth); prefill rotates positions 0..t.
        let offset = if t == 1 {
            511.min(p.max_context - 1)
        } else {
            0
        };
        let pos = RopePositions::new(offset, 1, t, dev)?;
        Ok(Op::Rope { rope, q, k, pos })
    }

    fn embedding(p: &Preset, t: usize, dt: DType, dev: &Device) -> Result<Self> {
        let mut m = HashMap::new();
        m.insert(
            "weight".to_string(),
            randn((p.vocab, p.hidden), 0.02, 35, dt, dev)?,
        );
        let emb = crate::api::embedding(p.vocab, p.hidden, var_builder(m, dt, dev))?;
        Ok(Op::Embedding {
            emb,
            ids: token_ids(t, p.vocab, 36, dev)?,
            dtype: dt,
        })
    }

    fn lm_head(p: &Preset, dt: DType, dev: &Device) -> Result<Self> {
        let w = quant::linear(p.vocab, p.hidden, 37, Format::Float(dt), dt, dev)?;
        Ok(Op::LmHead {
            w,
            x: randn((1, 1, p.hidden), 1.0, 38, dt, dev)?,
        })
    }

    fn sampling(p: &Preset, method: SamplingMethod, dev: &Device) -> Result<Self> {
        let logits = randn(p.vocab, 3.0, 39, DType::F32, dev)?;
        Ok(Op::Sampling {
            logits,
            method,
            rng: Box::new(StdRng::seed_from_u64(40)),
        })
    }
}

/// Greedy: index of the largest logit (first on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Top-p (nucleus) sampling at `temperature`: softmax, sort descending, keep the smallest
/// prefix whose probability reaches `top_p`, draw from it.
pub fn top_p(logits: &[f32], temperature: f32, top_p: f32, rng: &mut StdRng) -> Result<u32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .map(|(i, &x)| (i as u32, ((x - max) / temperature).exp()))
        .collect();
    let sum: f32 = probs.iter().map(|p| p.1).sum();
    probs.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
    let mut cum = 0.0;
    let mut keep = probs.len();
    for (i, p) in probs.iter().enumerate() {
        cum += p.1 / sum;
        if cum >= top_p {
            keep = i + 1;
            break;
        }
    }
    let kept = &probs[..keep];
    let dist = WeightedIndex::new(kept.iter().map(|p| p.1))?;
    Ok(kept[dist.sample(rng)].0)
}

impl Runner for Op {
    fn run(&mut self) -> Result<()> {
        match self {
            Op::RmsNorm { norm, x } => {
                norm.forward(x)?;
            }
            Op::Rope { rope, q, k, pos } => {
                crate::api::rope(rope, q, k, pos)?;
            }
            Op::Embedding { emb, ids, dtype } => {
                crate::api::embed(emb, ids, *dtype)?;
            }
            Op::LmHead { w, x } => {
                crate::api::qmatmul(&**w, x)?;
            }
            Op::Sampling {
                logits,
                method,
                rng,
            } => {
                let host: Vec<f32> = logits.to_vec1()?;
                let tok = match method {
                    SamplingMethod::Greedy => argmax(&host),
                    SamplingMethod::TopP => top_p(&host, TEMPERATURE, TOP_P, rng)?,
                };
                std::hint::black_box(tok);
            }
        }
        Ok(())
    }
}
