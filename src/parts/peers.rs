//! `peers`: the general-framework side of "does an LLM-specialised engine win?" (issue 6),
//! measured in the same binary, on the same shapes and the same models as the mistral.rs
//! groups:
//!
//! - `peers/candle/<preset>/{attention,ffn,rmsnorm,lm_head}/…`: the component shapes through
//!   plain candle ops, composed as candle-transformers 0.10.2 `models/llama.rs` composes them
//!   (f32 attention with `repeat_kv` and `masked_fill`, `candle_nn::Linear` projections,
//!   `candle_nn::RmsNorm`). Their mistral.rs counterparts are the `attention`, `ffn` and
//!   `small_ops` cases of the same preset and shape.
//! - `peers/candle/<model>/{prefill/ppN, decode/tg128/depthD, concurrent/cN}`: whole models
//!   through candle-transformers' own `llama::Llama` (the synthetic safetensors directory the
//!   engine loads) and `quantized_llama::ModelWeights` (the GGUF file), greedy decoding with
//!   the token read back to the host every step, as an engine must. Same prompts (same seeds)
//!   and the same timing rules as `generation`: prefill is the whole forward pass plus the
//!   first token; decode is 127 steps after the first token; concurrency is a static batch
//!   (candle has no scheduler), total generated tokens over wall time.
//!
//! The PyTorch peer (`scripts/peers/torch_peers.py`) writes the same ids under `peers/torch/`.

use crate::case::{
    elem_bytes, Case, CaseId, Ctx, PeerCase, PeerEngine, Phase, Runner, SmallOp, Spec, Workload,
};
use crate::config::{dtype_name, Preset};
use crate::engine::{cache, models_of, ModelRef};
use crate::parts::tensors::{randn, weight};
use crate::parts::{attention, contexts, ffn, generation, small_ops};
use anyhow::{anyhow, bail, Context as _, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Linear, Module, RmsNorm};
use candle_transformers::models::{llama, quantized_llama};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Component shapes compared with the engine (decode and a prefill of each).
pub const ATTN_DECODE: usize = 2048;
pub const ATTN_PREFILL: usize = 512;
pub const FFN_TOKENS: &[usize] = &[1, 512];
/// candle-transformers' quantized llama precomputes RoPE for this many positions.
pub const QUANT_MAX_SEQ: usize = quantized_llama::MAX_SEQ_LEN;

pub fn specs(p: &Preset, ctx: &Ctx) -> Result<Vec<Spec>> {
    let mut out = components(p, ctx);
    out.extend(end_to_end(p, ctx));
    Ok(out)
}

/// The id of candle's case `what` about `preset`.
fn candle_id(preset: &str, what: PeerCase) -> CaseId {
    CaseId::preset(
        preset,
        Case::Peers {
            engine: PeerEngine::Candle,
            what,
        },
    )
}

// ---------------------------------------------------------------------------------------
// Components

pub fn components(p: &Preset, ctx: &Ctx) -> Vec<Spec> {
    let dt = ctx.dtype;
    let mut out = Vec::new();
    let name = &p.name;
    for (phase, q_len, kv_len) in [
        (Phase::Decode, 1, ATTN_DECODE),
        (Phase::Prefill, ATTN_PREFILL, ATTN_PREFILL),
    ] {
        if contexts(p, &[kv_len]).is_empty() {
            continue;
        }
        let preset = p.clone();
        out.push(Spec::new(
            candle_id(name, PeerCase::Attention { phase, ctx: kv_len }),
            dt,
            attention::shape(p, q_len, kv_len, dt),
            attention::cost(p, q_len, kv_len, dt),
            // f32 copies of K/V after repeat_kv plus the score matrix
            (4 * p.heads * kv_len * p.head_dim + 2 * p.heads * q_len * kv_len) as u64 * 4,
            Box::new(move |dev: &Device| {
                Ok(
                    Box::new(CandleAttention::new(&preset, q_len, kv_len, dt, dev)?)
                        as Box<dyn Runner>,
                )
            }),
        ));
    }
    for &t in FFN_TOKENS {
        let preset = p.clone();
        let c = ffn::cost(p, t, crate::parts::quant::Format::Float(dt), dt);
        out.push(Spec::new(
            candle_id(
                name,
                PeerCase::Ffn {
                    phase: ffn::phase(t),
                    tokens: t,
                },
            ),
            dt,
            ffn::shape(p, t, dt),
            c,
            c.bytes,
            Box::new(move |dev: &Device| {
                Ok(Box::new(CandleFfn::new(&preset, t, dt, dev)?) as Box<dyn Runner>)
            }),
        ));
    }
    let preset = p.clone();
    out.push(Spec::new(
        candle_id(name, PeerCase::SmallOp(SmallOp::RmsNorm { tokens: 1 })),
        dt,
        format!("x=[1,1,{}] {}", p.hidden, dtype_name(dt)),
        small_ops::rmsnorm_cost(p, 1, dt),
        small_ops::rmsnorm_cost(p, 1, dt).bytes,
        Box::new(move |dev: &Device| {
            let w = randn(preset.hidden, 0.1, 21, dt, dev)?.affine(1.0, 1.0)?;
            let x = randn((1, 1, preset.hidden), 1.0, 22, dt, dev)?;
            Ok(Box::new(OpCase {
                f: Box::new(move || Ok(RmsNorm::new(w.clone(), preset.rms_eps).forward(&x)?)),
            }) as Box<dyn Runner>)
        }),
    ));
    let preset = p.clone();
    out.push(Spec::new(
        candle_id(name, PeerCase::SmallOp(SmallOp::LmHead { tokens: 1 })),
        dt,
        small_ops::lm_head_shape(p, dt),
        small_ops::lm_head_cost(p, dt),
        2 * small_ops::lm_head_cost(p, dt).bytes,
        Box::new(move |dev: &Device| {
            let w = Linear::new(weight(preset.vocab, preset.hidden, 23, dt, dev)?, None);
            let x = randn((1, 1, preset.hidden), 1.0, 24, dt, dev)?;
            Ok(Box::new(OpCase {
                f: Box::new(move || Ok(w.forward(&x)?)),
            }) as Box<dyn Runner>)
        }),
    ));
    out
}

/// A component whose one iteration is a closure over set-up tensors.
struct OpCase {
    f: Box<dyn FnMut() -> Result<Tensor>>,
}

impl Runner for OpCase {
    fn run(&mut self) -> Result<()> {
        (self.f)()?;
        Ok(())
    }
}

/// Attention as candle-transformers' llama computes it: GQA by `repeat_kv`, everything in
/// f32, `masked_fill` with a 0/1 causal mask for prefill, `softmax_last_dim`, back to the
/// model dtype.
pub struct CandleAttention {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Option<Tensor>,
    n_rep: usize,
    scale: f64,
}

impl CandleAttention {
    pub fn new(p: &Preset, q_len: usize, kv_len: usize, dt: DType, dev: &Device) -> Result<Self> {
        let i = attention::Inputs::new(p, q_len, kv_len, dt, dev)?;
        let mask = if q_len > 1 {
            Some(candle_transformers::utils::build_causal_mask(
                q_len,
                kv_len - q_len,
                dev,
            )?)
        } else {
            None
        };
        Ok(Self {
            q: i.q,
            k: i.k,
            v: i.v,
            mask,
            n_rep: p.n_rep(),
            scale: (p.head_dim as f64).sqrt(),
        })
    }

    pub fn forward(&self) -> Result<Tensor> {
        let in_dtype = self.q.dtype();
        let k = candle_transformers::utils::repeat_kv(self.k.clone(), self.n_rep)?;
        let v = candle_transformers::utils::repeat_kv(self.v.clone(), self.n_rep)?;
        let q = self.q.to_dtype(DType::F32)?;
        let k = k.to_dtype(DType::F32)?;
        let v = v.to_dtype(DType::F32)?;
        let att = (q.matmul(&k.t()?)? / self.scale)?;
        let att = match &self.mask {
            Some(m) => {
                let m = m.broadcast_as(att.shape())?;
                let ninf =
                    Tensor::new(f32::NEG_INFINITY, att.device())?.broadcast_as(att.shape())?;
                m.where_cond(&ninf, &att)?
            }
            None => att,
        };
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        Ok(att.matmul(&v.contiguous()?)?.to_dtype(in_dtype)?)
    }
}

impl Runner for CandleAttention {
    fn run(&mut self) -> Result<()> {
        self.forward()?;
        Ok(())
    }
}

/// The gated FFN as candle-transformers' llama `Mlp`: three `candle_nn::Linear`, SiLU.
pub struct CandleFfn {
    gate: Linear,
    up: Linear,
    down: Linear,
    x: Tensor,
}

impl CandleFfn {
    pub fn new(p: &Preset, t: usize, dt: DType, dev: &Device) -> Result<Self> {
        // the same seeded weights as the engine's `ffn` cases
        Ok(Self {
            gate: Linear::new(weight(p.intermediate, p.hidden, 11, dt, dev)?, None),
            up: Linear::new(weight(p.intermediate, p.hidden, 12, dt, dev)?, None),
            down: Linear::new(weight(p.hidden, p.intermediate, 13, dt, dev)?, None),
            x: randn((1, t, p.hidden), 1.0, 14, dt, dev)?,
        })
    }

    pub fn forward(&self) -> Result<Tensor> {
        let g = candle_nn::ops::silu(&self.gate.forward(&self.x)?)?;
        Ok(self.down.forward(&(g * self.up.forward(&self.x)?)?)?)
    }
}

impl Runner for CandleFfn {
    fn run(&mut self) -> Result<()> {
        self.forward()?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// End to end

/// A whole model in candle-transformers.
pub enum PeerModel {
    Llama {
        model: llama::Llama,
        config: llama::Config,
        dtype: DType,
        cache: Option<llama::Cache>,
    },
    Quantized {
        model: quantized_llama::ModelWeights,
    },
}

/// A loaded candle model and what it was loaded from.
pub struct Loaded {
    pub model: Mutex<PeerModel>,
    pub vocab: usize,
    /// Longest sequence (prompt + generated) it can hold.
    pub max_seq: usize,
    pub dtype: DType,
    pub load_time: Duration,
    pub label: String,
    /// Memory in use just before loading (`device::memory_in_use`).
    pub mem_before_load: Option<u64>,
    /// The first model this process loaded (its memory footprint is clean).
    pub first_model: bool,
}

impl PeerModel {
    /// Clears the KV cache (a new sequence starts at position 0).
    pub fn start(&mut self, device: &Device) -> Result<()> {
        if let PeerModel::Llama {
            config,
            dtype,
            cache,
            ..
        } = self
        {
            *cache = Some(llama::Cache::new(true, *dtype, config, device)?);
        }
        // quantized_llama drops its cache itself when a forward starts at position 0
        Ok(())
    }

    /// Logits `[batch, vocab]` of the last position of `ids` (`[batch, seq]`) at `pos`.
    pub fn forward(&mut self, ids: &Tensor, pos: usize) -> Result<Tensor> {
        Ok(match self {
            PeerModel::Llama { model, cache, .. } => {
                let c = cache.as_mut().ok_or_else(|| anyhow!("start() first"))?;
                model.forward(ids, pos, c)?
            }
            PeerModel::Quantized { model } => model.forward(ids, pos)?,
        })
    }
}

/// Loads `model` with candle-transformers on `device` in `dtype` (synthetic models are
/// written first if needed, with the crate's own writer).
pub fn load(p: &Preset, model: &ModelRef, dtype: DType, device: &Device) -> Result<Loaded> {
    let mem_before_load = crate::device::memory_in_use(device);
    let first_model = crate::device::memory::note_model_load();
    let t0 = Instant::now();
    let (m, vocab, max_seq, dt) = match model {
        ModelRef::Synthetic { .. } | ModelRef::Local { .. } => {
            let dir = match model {
                ModelRef::Local { path } => path.clone(),
                _ => crate::engine::synth::ensure(p, p.dtype())?,
            };
            let cfg_path = dir.join("config.json");
            let cfg: llama::LlamaConfig = crate::util::json::read(&cfg_path, "a llama config")?;
            let config = cfg.into_config(false);
            let files: Vec<_> = std::fs::read_dir(&dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "safetensors"))
                .collect();
            // SAFETY: the files are the crate's own model directory, not modified while mapped.
            let vb =
                unsafe { candle_nn::VarBuilder::from_mmaped_safetensors(&files, dtype, device)? };
            let llm = llama::Llama::load(vb, &config)?;
            let (vocab, max_seq) = (config.vocab_size, config.max_position_embeddings);
            (
                PeerModel::Llama {
                    model: llm,
                    config,
                    dtype,
                    cache: None,
                },
                vocab,
                max_seq,
                dtype,
            )
        }
        ModelRef::Gguf { path } => {
            let mut f = std::fs::File::open(path)
                .with_context(|| format!("{}: cannot open", path.display()))?;
            let content = candle_core::quantized::gguf_file::Content::read(&mut f)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            let vocab = content
                .metadata
                .get("tokenizer.ggml.tokens")
                .and_then(|v| v.to_vec().ok())
                .map(|v| v.len())
                .ok_or_else(|| anyhow!("{}: no tokenizer.ggml.tokens", path.display()))?;
            let w = quantized_llama::ModelWeights::from_gguf(content, &mut f, device)?;
            (
                PeerModel::Quantized { model: w },
                vocab,
                QUANT_MAX_SEQ,
                DType::F32,
            )
        }
    };
    crate::device::sync(device)?;
    Ok(Loaded {
        model: Mutex::new(m),
        vocab,
        max_seq,
        dtype: dt,
        load_time: t0.elapsed(),
        label: model.name(),
        mem_before_load,
        first_model,
    })
}

/// The candle model for `model` from the one model cache, loading it (and dropping the model
/// held before, e.g. the engine of the `generation` group) if needed.
fn loaded_for(p: &Preset, model: &ModelRef, dtype: DType, device: &Device) -> Result<Arc<Loaded>> {
    let key = format!("candle/{model:?}/{dtype:?}/{device:?}");
    cache::get_or_load(&key, || {
        eprintln!(
            "mistral-rs-bench: loading {} in candle-transformers ...",
            model.name()
        );
        let l = load(p, model, dtype, device)?;
        eprintln!(
            "mistral-rs-bench: loaded in {:.1} s",
            l.load_time.as_secs_f64()
        );
        Ok(l)
    })
}

pub fn end_to_end(p: &Preset, ctx: &Ctx) -> Vec<Spec> {
    let mut out = Vec::new();
    let dev = &ctx.device;
    for model in models_of(p, p.dtype()) {
        let is_gguf = matches!(model, ModelRef::Gguf { .. });
        let max_seq = if is_gguf {
            QUANT_MAX_SEQ
        } else {
            p.max_context
        };
        let wb = match &model {
            ModelRef::Gguf { path } => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            _ => p.n_params() * elem_bytes(ctx.dtype),
        };
        // the engine's cases (same lengths and costs), without TTFT: the peers have no
        // request path, their TTFT is the 128-token prefill
        for (kind, tokens, cost) in generation::workloads(p, dev, wb, false) {
            let need = generation::positions(&kind, dev);
            let (preset, model2, dt) = (p.clone(), model.clone(), ctx.dtype);
            let spec = Spec::new(
                CaseId::model(
                    model.id_name(),
                    Case::Peers {
                        engine: PeerEngine::Candle,
                        what: PeerCase::Workload(kind),
                    },
                ),
                dt,
                format!(
                    "{} layers, hidden {}, vocab {}",
                    p.layers, p.hidden, p.vocab
                ),
                cost,
                wb * 2,
                Box::new(move |dev: &Device| {
                    let l = loaded_for(&preset, &model2, dt, dev)?;
                    Ok(Box::new(E2eCase::new(l, kind, dev)?) as Box<dyn Runner>)
                }),
            )
            .with_tokens(tokens);
            out.push(if need > max_seq {
                spec.skipped(format!(
                    "needs {need} positions; this candle model holds {max_seq}"
                ))
            } else {
                spec
            });
        }
    }
    out
}

struct E2eCase {
    l: Arc<Loaded>,
    kind: Workload,
    device: Device,
    prompt: Tensor,
    prompt_len: usize,
    conc_gen: usize,
    /// The token after the prompt (decode cases), from the untimed prefill in `reset`.
    next: Vec<u32>,
    itl_ms: Vec<f64>,
    mem: crate::device::memory::PeakMem,
}

impl E2eCase {
    fn new(l: Arc<Loaded>, kind: Workload, dev: &Device) -> Result<Self> {
        let (_, conc_gen) = generation::conc_lengths(dev);
        // the same prompts (seeds) as the `generation` cases
        let rows = generation::prompts(&kind, l.vocab, dev);
        let (b, n) = (rows.len(), rows[0].len());
        if rows.iter().flatten().any(|&t| t as usize >= l.vocab) {
            bail!("a prompt token is outside the vocabulary");
        }
        let prompt = Tensor::from_vec(rows.concat(), (b, n), dev)?;
        Ok(Self {
            mem: crate::device::memory::PeakMem::start(dev, l.mem_before_load, l.first_model),
            l,
            kind,
            device: dev.clone(),
            prompt,
            prompt_len: n,
            conc_gen,
            next: vec![],
            itl_ms: vec![],
        })
    }

    /// Greedy next tokens (read back to the host, as an engine must to stream them).
    fn argmax(logits: &Tensor) -> Result<Vec<u32>> {
        Ok(logits.argmax(D::Minus1)?.to_vec1::<u32>()?)
    }

    /// `steps` greedy decode steps from `next` at position `pos`.
    fn decode(&mut self, m: &mut PeerModel, mut pos: usize, steps: usize) -> Result<()> {
        let b = self.next.len();
        for _ in 0..steps {
            let t = Instant::now();
            let ids = Tensor::from_vec(self.next.clone(), (b, 1), &self.device)?;
            self.next = Self::argmax(&m.forward(&ids, pos)?)?;
            pos += 1;
            if matches!(self.kind, Workload::Decode { .. }) {
                self.itl_ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        Ok(())
    }
}

impl Runner for E2eCase {
    fn run(&mut self) -> Result<()> {
        self.timed().map(|_| ())
    }
    fn needs_reset(&self) -> bool {
        true
    }
    fn reset(&mut self) -> Result<()> {
        let l = self.l.clone();
        let mut m = l.model.lock().expect("model lock");
        m.start(&self.device)?;
        if let Workload::Decode { .. } = self.kind {
            self.next = Self::argmax(&m.forward(&self.prompt, 0)?)?;
        }
        crate::device::sync(&self.device)
    }
    fn timed(&mut self) -> Result<Option<Duration>> {
        // The harness does not reset self-timed runners: start a fresh sequence here, untimed.
        self.reset()?;
        let l = self.l.clone();
        let mut m = l.model.lock().expect("model lock");
        let t = Instant::now();
        match self.kind {
            Workload::Prefill { .. } | Workload::Ttft { .. } => {
                Self::argmax(&m.forward(&self.prompt, 0)?)?;
            }
            Workload::Decode { gen, .. } => self.decode(&mut m, self.prompt_len, gen - 1)?,
            Workload::Concurrent { .. } => {
                self.next = Self::argmax(&m.forward(&self.prompt, 0)?)?;
                self.decode(&mut m, self.prompt_len, self.conc_gen - 1)?;
            }
        }
        Ok(Some(t.elapsed()))
    }
    fn extra(&self) -> serde_json::Value {
        serde_json::json!({
            "engine": "candle-transformers 0.10.2",
            "model": self.l.label,
            "engine_dtype": dtype_name(self.l.dtype),
            "load_s": self.l.load_time.as_secs_f64(),
            "itl_ms": generation::percentiles(&self.itl_ms),
            "memory": self.mem.report(),
        })
    }
}
