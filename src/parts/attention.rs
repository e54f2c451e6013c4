//! `attention`: one layer's scaled-dot-product attention, prefill (q_len = ctx, causal) and
//! decode (q_len = 1 against a KV cache of ctx tokens), with the preset's GQA.
//!
//! mistralrs-core 0.8.1 keeps its attention dispatcher (`Sdpa`, `SdpaParams`) private, so
//! each path below composes the public kernels that `Sdpa::run_attention` (in
//! `mistralrs-core-0.8.1/src/attention/mod.rs`) dispatches to, and names the engine function
//! it mirrors:
//!
//! | path | device | engine function mirrored |
//! |---|---|---|
//! | `naive` | all | `Sdpa::run_attention_noflash` → `attention/backends/naive.rs::naive_sdpa` (taken for prefill with a 2-D causal mask on CUDA, and when cuBLASLt is absent) |
//! | `cublaslt` | CUDA | the cuBLASLt branch of `Sdpa::run_attention_noflash` (decode, no mask) |
//! | `paged` | CUDA, Metal | `paged_attention/layers/paged_attention.rs::PagedAttention::forward` decode → `mistralrs_paged_attn::paged_attention` |
//! | `flash` | CUDA + `flash-attn` | `attention/backends/flash.rs::flash_attn` → `candle_flash_attn::flash_attn` |
//! | `metal_sdpa` | Metal | the Metal branch of `Sdpa::run_attention_noflash` → `candle_nn::ops::sdpa` |
//!
//! On the CPU the engine itself runs a private kernel (`attention/backends/cpu.rs::
//! run_flash_attn_cpu`) that no public API reaches; the `naive` path here is what the engine
//! would run without it. The engine's own CPU attention is measured in place, end to end,
//! by the `generation` group's context slope.

use crate::case::{elem_bytes, AttnPath, Case, CaseId, Cost, Ctx, Phase, Runner, Spec};
use crate::config::{dtype_name, Preset};
use crate::parts::contexts;
use crate::parts::tensors::{randn, token_ids};
use anyhow::Result;
use candle_core::{DType, Device, Tensor, D};
use mistralrs_core::layers::{repeat_kv, MatMul};

/// Prefill lengths (capped to the preset's context).
pub const PREFILL: &[usize] = &[128, 512, 2048];
/// Decode context depths (capped to the preset's context).
pub const DECODE: &[usize] = &[512, 2048, 8192, 32768];
/// Query rows per chunk in the engine's chunked attention (`ATTENTION_CHUNK_SIZE`).
pub const ENGINE_CHUNK: usize = 1024;
/// The engine grows its KV buffers in steps of 512 tokens; decode reads a view of one.
pub const CACHE_STEP: usize = 512;
/// Why every CPU attention case is a stand-in.
pub const CPU_STAND_IN: &str = "on the CPU the engine runs its private kernel \
    (mistralrs-core 0.8.1 attention/backends/cpu.rs, run_flash_attn_cpu), which no public API \
    reaches; this path is what the engine would run without it";

/// Attention paths this build and device can run.
pub fn paths(device: &Device, dtype: DType, decode: bool) -> Vec<AttnPath> {
    let mut v = vec![AttnPath::Naive];
    if device.is_cuda() && decode {
        v.push(AttnPath::Cublaslt);
    }
    if (device.is_cuda() || device.is_metal()) && decode {
        v.push(AttnPath::Paged);
    }
    if cfg!(feature = "flash-attn") && device.is_cuda() && dtype != DType::F32 {
        v.push(AttnPath::Flash);
    }
    if device.is_metal() {
        v.push(AttnPath::MetalSdpa);
    }
    v
}

/// FLOPs and minimum bytes of one attention call: `QKᵀ` and `PV` (2·2·h·q·kv·d; the naive
/// path computes the whole causal square, so no halving), reading Q, K, V (KV heads only)
/// and writing O once. Softmax FLOPs are not counted.
pub fn cost(p: &Preset, q_len: usize, kv_len: usize, dtype: DType) -> Cost {
    let (h, kvh, d) = (p.heads as u64, p.kv_heads as u64, p.head_dim as u64);
    let (q, kv) = (q_len as u64, kv_len as u64);
    let e = elem_bytes(dtype);
    Cost {
        flops: 4 * h * q * kv * d,
        bytes: (2 * h * q * d + 2 * kvh * kv * d) * e,
    }
}

/// The shapes of one attention call, for the case's `shape` field.
pub fn shape(p: &Preset, q_len: usize, kv_len: usize, dt: DType) -> String {
    format!(
        "q=[1,{},{q_len},{}] kv=[1,{},{kv_len},{}] {}",
        p.heads,
        p.head_dim,
        p.kv_heads,
        p.head_dim,
        dtype_name(dt)
    )
}

/// Peak memory of the naive path: K/V, their GQA copies, and two score matrices.
fn naive_mem(p: &Preset, q_len: usize, kv_len: usize, dtype: DType) -> u64 {
    let e = elem_bytes(dtype);
    let (h, kvh, d) = (p.heads as u64, p.kv_heads as u64, p.head_dim as u64);
    let kv_buf = kv_len.div_ceil(CACHE_STEP) as u64 * CACHE_STEP as u64;
    let chunk = q_len.min(ENGINE_CHUNK) as u64;
    (2 * kvh * kv_buf * d
        + 2 * h * kv_len as u64 * d
        + 2 * h * chunk * kv_len as u64
        + 2 * h * q_len as u64 * d)
        * e
}

pub fn specs(p: &Preset, ctx: &Ctx) -> anyhow::Result<Vec<Spec>> {
    let mut out = Vec::new();
    let dt = ctx.dtype;
    let mut push = |phase: Phase, q_len: usize, kv_len: usize| {
        for path in paths(&ctx.device, dt, phase == Phase::Decode) {
            let id = CaseId::preset(
                &p.name,
                Case::Attention {
                    phase,
                    path,
                    ctx: kv_len,
                },
            );
            let shape = shape(p, q_len, kv_len, dt);
            let preset = p.clone();
            let spec = Spec::new(
                id,
                dt,
                shape,
                cost(p, q_len, kv_len, dt),
                naive_mem(p, q_len, kv_len, dt),
                Box::new(move |dev: &Device| build(&preset, path, q_len, kv_len, dt, dev)),
            );
            out.push(if ctx.device.is_cpu() {
                spec.stand_in(CPU_STAND_IN)
            } else {
                spec
            });
        }
    };
    for c in contexts(p, PREFILL) {
        push(Phase::Prefill, c, c);
    }
    for c in contexts(p, DECODE) {
        push(Phase::Decode, 1, c);
    }
    Ok(out)
}

/// Inputs of one attention call, laid out as the engine holds them: Q/K/V
/// `[1, heads, len, head_dim]`; for decode, K/V are a view of the first `kv_len` rows of a
/// buffer grown in 512-token steps (as the engine's KV cache returns them).
pub struct Inputs {
    pub q: Tensor,
    pub k: Tensor,
    pub v: Tensor,
    pub mask: Option<Tensor>,
    pub scale: f32,
    pub n_rep: usize,
}

impl Inputs {
    pub fn new(
        p: &Preset,
        q_len: usize,
        kv_len: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let q = randn((1, p.heads, q_len, p.head_dim), 1.0, 1, dtype, device)?;
        let (k, v) = if q_len == 1 {
            let cap = kv_len.div_ceil(CACHE_STEP) * CACHE_STEP;
            let kb = randn((1, p.kv_heads, cap, p.head_dim), 1.0, 2, dtype, device)?;
            let vb = randn((1, p.kv_heads, cap, p.head_dim), 1.0, 3, dtype, device)?;
            (kb.narrow(2, 0, kv_len)?, vb.narrow(2, 0, kv_len)?)
        } else {
            (
                randn((1, p.kv_heads, kv_len, p.head_dim), 1.0, 2, dtype, device)?,
                randn((1, p.kv_heads, kv_len, p.head_dim), 1.0, 3, dtype, device)?,
            )
        };
        // The engine builds the causal mask once per forward pass (shared by all layers).
        let mask = if q_len > 1 {
            let ids = token_ids(q_len, 2, 0, device)?;
            crate::api::causal_mask(&ids, dtype)?
        } else {
            None
        };
        Ok(Self {
            q,
            k,
            v,
            mask,
            scale: 1.0 / (p.head_dim as f32).sqrt(),
            n_rep: p.n_rep(),
        })
    }
}

/// The naive path, composed as `naive_sdpa` does it: GQA by `repeat_kv`, then per chunk of
/// at most 1024 query rows `softmax(scale·QKᵀ + mask)·V` with the engine's `MatMul`.
pub fn naive(i: &Inputs) -> Result<Tensor> {
    let k = repeat_kv(i.k.clone(), i.n_rep)?;
    let v = repeat_kv(i.v.clone(), i.n_rep)?;
    let (q, k, v) = if i.mask.as_ref().is_some_and(|m| m.rank() == 2) {
        (i.q.contiguous()?, k.contiguous()?, v.contiguous()?)
    } else {
        (i.q.clone(), k, v)
    };
    let q_len = q.dim(2)?;
    let kt = k.t()?;
    let mut chunks = Vec::with_capacity(q_len.div_ceil(ENGINE_CHUNK));
    let mut start = 0;
    while start < q_len {
        let len = ENGINE_CHUNK.min(q_len - start);
        let qc = if len == q_len {
            q.clone()
        } else {
            q.narrow(2, start, len)?
        };
        let mut att = MatMul.matmul_affine_mul(&qc, &kt, i.scale as f64)?;
        if let Some(m) = &i.mask {
            let mc = if len == q_len {
                m.clone()
            } else {
                m.narrow(m.rank() - 2, start, len)?
            };
            att = att.broadcast_add(&mc)?;
        }
        att = candle_nn::ops::softmax_last_dim(&att)?;
        chunks.push(MatMul.matmul(&att, &v)?);
        start += len;
    }
    Ok(if chunks.len() == 1 {
        chunks.pop().unwrap()
    } else {
        Tensor::cat(&chunks, 2)?
    })
}

/// Plain f32 attention with explicit GQA head mapping, for tests.
pub fn reference(i: &Inputs) -> Result<Tensor> {
    let f = |t: &Tensor| t.to_dtype(DType::F32);
    let (q, k, v) = (f(&i.q)?, f(&i.k)?, f(&i.v)?);
    let heads = q.dim(1)?;
    let mut outs = Vec::with_capacity(heads);
    for h in 0..heads {
        let kvh = h / i.n_rep;
        let qh = q.narrow(1, h, 1)?.squeeze(1)?.squeeze(0)?;
        let kh = k.narrow(1, kvh, 1)?.squeeze(1)?.squeeze(0)?.contiguous()?;
        let vh = v.narrow(1, kvh, 1)?.squeeze(1)?.squeeze(0)?.contiguous()?;
        let mut s = (qh.matmul(&kh.t()?)? * i.scale as f64)?;
        if let Some(m) = &i.mask {
            s = s.broadcast_add(&f(m)?)?;
        }
        let mx = s.max_keepdim(D::Minus1)?;
        let e = s.broadcast_sub(&mx)?.exp()?;
        let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
        outs.push(p.matmul(&vh)?.unsqueeze(0)?);
    }
    Ok(Tensor::cat(&outs, 0)?.unsqueeze(0)?)
}

struct Attn {
    inputs: Inputs,
    path: AttnPath,
    #[allow(dead_code)]
    gpu: Option<GpuState>,
}

/// Extra state of the GPU paths.
#[allow(dead_code)]
enum GpuState {
    /// Paged caches, block tables and context lengths.
    Paged {
        key_cache: Tensor,
        value_cache: Tensor,
        block_tables: Tensor,
        context_lens: Tensor,
    },
    /// The cuBLASLt path's preallocated output.
    Scratch(Tensor),
}

fn build(
    p: &Preset,
    path: AttnPath,
    q_len: usize,
    kv_len: usize,
    dtype: DType,
    dev: &Device,
) -> Result<Box<dyn Runner>> {
    Ok(Box::new(Attn::new(p, path, q_len, kv_len, dtype, dev)?))
}

impl Attn {
    /// Inputs and the path's extra state (set-up only).
    fn new(
        p: &Preset,
        path: AttnPath,
        q_len: usize,
        kv_len: usize,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        let inputs = Inputs::new(p, q_len, kv_len, dtype, dev)?;
        let gpu = match path {
            AttnPath::Paged => Some(paged_state(p, &inputs, kv_len, dtype, dev)?),
            AttnPath::Cublaslt => {
                mistralrs_quant::cublaslt::maybe_init_cublas_lt_wrapper(dev.clone());
                if mistralrs_quant::cublaslt::CUBLASLT_CONTROLLER
                    .get_for_device(dev)
                    .is_none()
                {
                    anyhow::bail!("cuBLASLt is not available on this device");
                }
                Some(GpuState::Scratch(inputs.q.flatten(0, 1)?.zeros_like()?))
            }
            AttnPath::Naive | AttnPath::Flash | AttnPath::MetalSdpa => None,
        };
        Ok(Attn { inputs, path, gpu })
    }
}

/// Paged caches holding the same K/V as `inputs`, in the layout of `reshape_and_cache`
/// ([`crate::parts::paged::caches`]).
#[allow(unused_variables)]
fn paged_state(
    p: &Preset,
    i: &Inputs,
    kv_len: usize,
    dtype: DType,
    dev: &Device,
) -> Result<GpuState> {
    #[cfg(any(feature = "cuda", feature = "metal"))]
    {
        use crate::parts::paged;
        let blocks = paged::blocks(kv_len);
        let (key_cache, value_cache) = paged::caches(p, blocks, dtype, dev)?;
        let k = i.k.squeeze(0)?.transpose(0, 1)?.contiguous()?; // [kv_len, kv_heads, d]
        let v = i.v.squeeze(0)?.transpose(0, 1)?.contiguous()?;
        let slots = Tensor::arange(0i64, kv_len as i64, dev)?;
        mistralrs_paged_attn::reshape_and_cache(
            &k,
            &v,
            None,
            None,
            &key_cache,
            &value_cache,
            &slots,
        )?;
        let block_tables = Tensor::arange(0u32, blocks as u32, dev)?.reshape((1, blocks))?;
        let context_lens = Tensor::new(&[kv_len as u32], dev)?;
        Ok(GpuState::Paged {
            key_cache,
            value_cache,
            block_tables,
            context_lens,
        })
    }
    #[cfg(not(any(feature = "cuda", feature = "metal")))]
    anyhow::bail!("paged attention needs the `cuda` or `metal` feature")
}

impl Attn {
    fn forward(&self) -> Result<Tensor> {
        let i = &self.inputs;
        match self.path {
            AttnPath::Naive => naive(i),
            AttnPath::Cublaslt => self.cublaslt(),
            AttnPath::Paged => self.paged(),
            AttnPath::Flash => self.flash(),
            AttnPath::MetalSdpa => {
                let mask = match &i.mask {
                    Some(m) => Some(m.broadcast_as((1, i.q.dim(1)?, i.q.dim(2)?, i.k.dim(2)?))?),
                    None => None,
                };
                Ok(candle_nn::ops::sdpa(
                    &i.q,
                    &i.k,
                    &i.v,
                    mask.as_ref(),
                    false,
                    i.scale,
                    1.0,
                )?)
            }
        }
    }

    /// The cuBLASLt branch: K·Qᵀ batched over heads with the scale fused, softmax, then
    /// Vᵀ·P into a preallocated output (the engine writes into Q's buffer; a separate buffer
    /// keeps Q unchanged between iterations).
    fn cublaslt(&self) -> Result<Tensor> {
        let i = &self.inputs;
        let lt = mistralrs_quant::cublaslt::CUBLASLT_CONTROLLER
            .get_for_device(i.q.device())
            .ok_or_else(|| anyhow::anyhow!("cuBLASLt unavailable"))?;
        let k = repeat_kv(i.k.clone(), i.n_rep)?;
        let v = repeat_kv(i.v.clone(), i.n_rep)?;
        let (k_flat, v_flat) = (k.flatten(0, 1)?, v.flatten(0, 1)?);
        let q_flat = i.q.flatten(0, 1)?;
        let scores = lt.batch_matmul(&k_flat, &q_flat, None, Some(i.scale), None, None, None)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = match &self.gpu {
            Some(GpuState::Scratch(t)) => Some(t),
            _ => None,
        };
        Ok(lt.batch_matmul(
            &v_flat.t()?.contiguous()?,
            &probs,
            out,
            None,
            None,
            None,
            None,
        )?)
    }

    fn paged(&self) -> Result<Tensor> {
        #[cfg(any(feature = "cuda", feature = "metal"))]
        {
            let i = &self.inputs;
            let Some(GpuState::Paged {
                key_cache,
                value_cache,
                block_tables,
                context_lens,
            }) = &self.gpu
            else {
                anyhow::bail!("paged attention state missing");
            };
            // q [1, heads, 1, d] -> [num_seqs = 1, heads, d]
            let q = i.q.squeeze(2)?.contiguous()?;
            Ok(mistralrs_paged_attn::paged_attention(
                &q,
                None,
                None,
                key_cache,
                value_cache,
                block_tables,
                context_lens,
                None,
                i.k.dim(2)?,
                i.scale,
                1.0,
                None,
            )?)
        }
        #[cfg(not(any(feature = "cuda", feature = "metal")))]
        anyhow::bail!("paged attention needs the `cuda` or `metal` feature")
    }

    fn flash(&self) -> Result<Tensor> {
        #[cfg(feature = "flash-attn")]
        {
            let i = &self.inputs;
            let q = i.q.transpose(1, 2)?;
            let k = i.k.transpose(1, 2)?;
            let v = i.v.transpose(1, 2)?;
            Ok(
                candle_flash_attn::flash_attn(&q, &k, &v, i.scale, i.q.dim(2)? > 1)?
                    .transpose(1, 2)?,
            )
        }
        #[cfg(not(feature = "flash-attn"))]
        anyhow::bail!("flash attention needs the `flash-attn` feature")
    }
}

impl Runner for Attn {
    fn run(&mut self) -> Result<()> {
        self.forward()?;
        Ok(())
    }
}

/// Runs one attention path once and returns its output `[1, heads, q_len, head_dim]`
/// (for tests and fidelity checks).
pub fn run_once(
    p: &Preset,
    path: AttnPath,
    q_len: usize,
    kv_len: usize,
    dtype: DType,
    dev: &Device,
) -> Result<(Tensor, Inputs)> {
    let a = Attn::new(p, path, q_len, kv_len, dtype, dev)?;
    let out = a.forward()?;
    let out = if path == AttnPath::Paged {
        out.unsqueeze(2)?
    } else {
        out
    };
    Ok((out, a.inputs))
}
