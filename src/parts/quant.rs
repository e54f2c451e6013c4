//! Weight formats of the benches: unquantized references and every in-situ quantization
//! (ISQ) type mistral.rs applies through `QuantMethod::apply_isq`.

use crate::case::{elem_bytes, WeightClass, WeightFormat};
use anyhow::Result;
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use candle_nn::Linear;
use mistralrs_quant::{IsqType, QuantMethod, QuantMethodConfig, QuantizeOntoGuard, UnquantLinear};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

/// A weight format: unquantized in a float dtype, or an ISQ type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Float(DType),
    Isq(IsqType),
}

impl Format {
    /// The formats of the `quant_matmul` group: three unquantized references, then 4-bit and
    /// 8-bit types of each family (GGML block quants, HQQ, AFQ, MXFP4, FP8 E4M3 with a
    /// per-tensor scale, FP8 with Q8 activations). Q4_1 is the format of the real SmolLM2
    /// GGUF (and what Q4K falls back to at SmolLM2's 576-wide rows): the kernel the engine
    /// runs for that model, set against llama.cpp's (docs/peers.md).
    pub fn all() -> Vec<Format> {
        use IsqType::*;
        vec![
            Format::Float(DType::F32),
            Format::Float(DType::BF16),
            Format::Float(DType::F16),
            Format::Isq(Q4_0),
            Format::Isq(Q4_1),
            Format::Isq(Q4K),
            Format::Isq(HQQ4),
            Format::Isq(AFQ4),
            Format::Isq(MXFP4),
            Format::Isq(Q8_0),
            Format::Isq(HQQ8),
            Format::Isq(AFQ8),
            Format::Isq(F8Q8),
            Format::Isq(F8E4M3),
        ]
    }

    /// Why this format cannot run on `device`, known without trying.
    pub fn unsupported_on(&self, device: &Device) -> Option<&'static str> {
        self.unsupported(device.is_cpu())
    }

    /// [`Self::unsupported_on`] for a CPU (`cpu`) or a GPU.
    pub fn unsupported(&self, cpu: bool) -> Option<&'static str> {
        match self {
            Format::Float(DType::BF16) if cpu => {
                Some("candle 0.10.2 has no bf16 matmul on the CPU")
            }
            // Found on an H200 (2026-12-07): the case's worker died with "device mismatch in
            // matmul, lhs: Cuda, rhs: Cpu", which ended the whole paired run.
            Format::Isq(IsqType::F8Q8) if !cpu => Some(
                "mistralrs-quant 0.8.1's F8Q8Linear is CPU-only: it keeps its blocks in host \
                 memory and dequantizes them onto the CPU in every forward (f8q8/mod.rs, \
                 `forward` and `dtype_and_device`), so a GPU input fails with a device mismatch",
            ),
            _ => None,
        }
    }

    /// Name used in case ids: `f32`, `bf16`, `Q4K`, `HQQ8`, ...
    pub fn name(&self) -> String {
        match self {
            Format::Float(d) => crate::config::dtype_name(*d).to_string(),
            Format::Isq(t) => format!("{t:?}"),
        }
    }

    /// The class used to group case ids: `q4`, `q8`, or `float` for unquantized weights.
    pub fn class(&self) -> WeightClass {
        use IsqType::*;
        match self {
            Format::Float(_) => WeightClass::Float,
            Format::Isq(Q4_0 | Q4_1 | Q4K | HQQ4 | AFQ4 | MXFP4) => WeightClass::Q4,
            Format::Isq(Q8_0 | Q8_1 | Q8K | HQQ8 | AFQ8 | F8Q8 | F8E4M3) => WeightClass::Q8,
            Format::Isq(_) => WeightClass::Qother,
        }
    }

    /// The format as it appears in case ids (`float/f32`, `q4/Q4K`).
    pub fn id(&self) -> WeightFormat {
        WeightFormat {
            class: self.class(),
            name: self.name(),
        }
    }

    /// The nominal bits per weight (for the error bound of tests).
    pub fn bits(&self) -> u32 {
        match (self, self.class()) {
            (Format::Float(d), _) => 8 * d.size_in_bytes() as u32,
            (_, WeightClass::Q4) => 4,
            (_, WeightClass::Q8) => 8,
            _ => 0,
        }
    }

    /// The format mistral.rs really stores for a weight whose rows have `in_dim` elements.
    /// GGML block types need `in_dim` to be a multiple of their block; otherwise the engine
    /// falls back (Q4K→Q4_1, Q8K→Q8_1, ...) or leaves the tensor unquantized. This mirrors
    /// `get_quantization_behaviour`/`get_fallback` in mistralrs-quant 0.8.1 `utils/isq.rs`.
    pub fn effective(&self, in_dim: usize) -> Format {
        let Format::Isq(t) = *self else { return *self };
        let Ok(mut g) = GgmlDType::try_from(t) else {
            return *self;
        };
        loop {
            if in_dim.is_multiple_of(g.block_size()) {
                return Format::Isq(ggml_to_isq(g).unwrap_or(t));
            }
            g = match g {
                GgmlDType::Q2K | GgmlDType::Q3K => GgmlDType::Q4_0,
                GgmlDType::Q4K => GgmlDType::Q4_1,
                GgmlDType::Q5K => GgmlDType::Q5_0,
                GgmlDType::Q6K => GgmlDType::Q5_1,
                GgmlDType::Q8K => GgmlDType::Q8_1,
                _ => return Format::Float(DType::F32),
            };
        }
    }

    /// Bytes of an `[out_dim, in_dim]` weight in this format (`act` is the dtype scales are
    /// kept in for HQQ/AFQ).
    pub fn weight_bytes(&self, out_dim: usize, in_dim: usize, act: DType) -> u64 {
        let n = (out_dim * in_dim) as u64;
        match self.effective(in_dim) {
            Format::Float(d) => n * elem_bytes(d),
            Format::Isq(t) => {
                if let Ok(g) = GgmlDType::try_from(t) {
                    return n / g.block_size() as u64 * g.type_size() as u64;
                }
                match t {
                    // packed weights + a scale and a zero per group of 64, in the act dtype
                    IsqType::HQQ4 | IsqType::AFQ4 => n / 2 + 2 * (n / 64) * elem_bytes(act),
                    IsqType::HQQ8 | IsqType::AFQ8 => n + 2 * (n / 64) * elem_bytes(act),
                    // 32 fp8 values and one f8 scale per block: 33 bytes / 32 weights
                    IsqType::F8Q8 => n / 32 * 33,
                    // one byte per weight (+ one scale per tensor)
                    IsqType::F8E4M3 => n,
                    // 4-bit E2M1 values + one E8M0 scale byte per block of 32
                    IsqType::MXFP4 => n / 2 + n / 32,
                    _ => n,
                }
            }
        }
    }
}

fn ggml_to_isq(g: GgmlDType) -> Option<IsqType> {
    Some(match g {
        GgmlDType::Q4_0 => IsqType::Q4_0,
        GgmlDType::Q4_1 => IsqType::Q4_1,
        GgmlDType::Q5_0 => IsqType::Q5_0,
        GgmlDType::Q5_1 => IsqType::Q5_1,
        GgmlDType::Q8_0 => IsqType::Q8_0,
        GgmlDType::Q8_1 => IsqType::Q8_1,
        GgmlDType::Q2K => IsqType::Q2K,
        GgmlDType::Q3K => IsqType::Q3K,
        GgmlDType::Q4K => IsqType::Q4K,
        GgmlDType::Q5K => IsqType::Q5K,
        GgmlDType::Q6K => IsqType::Q6K,
        GgmlDType::Q8K => IsqType::Q8K,
        _ => return None,
    })
}

/// An unquantized mistral.rs linear layer (no bias) over `w` `[out, in]`.
pub fn unquant(w: Tensor) -> Result<Arc<dyn QuantMethod>> {
    Ok(Arc::new(UnquantLinear::new(
        QuantMethodConfig::Unquantized(Linear::new(w, None)),
    )?))
}

/// Applies `format` to an unquantized layer the way the engine's ISQ does
/// (`QuantMethod::apply_isq`); float formats cast the weight instead. For a lone layer only:
/// a layer that derives state from its weights when built (`layers::Mlp`) is built under
/// `api::with_immediate_isq` instead, as the engine builds it.
fn apply(
    layer: Arc<dyn QuantMethod>,
    format: Format,
    device: &Device,
) -> Result<Arc<dyn QuantMethod>> {
    match format {
        Format::Float(d) => {
            let (w, _) = layer
                .unquant_weight_bias()
                .ok_or_else(|| anyhow::anyhow!("layer has no unquantized weight"))?;
            unquant(w.to_dtype(d)?)
        }
        Format::Isq(t) => Ok(layer.apply_isq(
            Some(t),
            device.clone(),
            &AtomicUsize::new(0),
            None,
            QuantizeOntoGuard::new(),
        )?),
    }
}

/// A linear layer `[out, in]` with seeded weights in `format`; quantized formats start from
/// weights in `base` (the model's dtype), as ISQ does after loading.
pub fn linear(
    out_dim: usize,
    in_dim: usize,
    seed: u64,
    format: Format,
    base: DType,
    device: &Device,
) -> Result<Arc<dyn QuantMethod>> {
    let dtype = match format {
        Format::Float(d) => d,
        Format::Isq(_) => base,
    };
    match format {
        Format::Float(_) => unquant(crate::parts::tensors::weight(
            out_dim, in_dim, seed, dtype, device,
        )?),
        // As the engine's ISQ does: unquantized weights in host memory, quantized onto the
        // device by `apply_isq` (GGML types quantize on the host and upload; HQQ/AFQ move
        // the weight first).
        Format::Isq(_) => apply(
            unquant(crate::parts::tensors::weight(
                out_dim,
                in_dim,
                seed,
                dtype,
                &Device::Cpu,
            )?)?,
            format,
            device,
        ),
    }
}
