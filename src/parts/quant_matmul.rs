//! `quant_matmul`: one projection `y = x·Wᵀ` through mistral.rs's `QuantMethod` layers, for
//! every weight format (unquantized f32/bf16/f16 references; Q4_0, Q4_1, Q4K, HQQ4, AFQ4, MXFP4 at 4 bits;
//! Q8_0, HQQ8, AFQ8, F8Q8, FP8 E4M3 at 8 bits), at the preset's projection shapes, for decode (m = 1)
//! and prefill (m = 128). Set-up records each format's error against the f32 product on the
//! same inputs, and the format the engine really stores (GGML block types fall back when the
//! row length is not a multiple of their block). The unquantized formats also run m = 4: a
//! decode step of four concurrent sequences, which the CPU's f16 and f32 matmuls (the gemm
//! crate) take by another path than one row.

use crate::case::{elem_bytes, Case, CaseId, Cost, Ctx, Proj, Runner, Spec};
use crate::config::{dtype_name, Preset};
use crate::parts::quant::{self, Format};
use crate::parts::tensors::{randn, rel_error, weight};
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use mistralrs_quant::QuantMethod;
use std::sync::Arc;

/// Rows of the activation: decode and prefill.
pub const ROWS: &[usize] = &[1, 128];
/// Rows of the unquantized formats: decode, decode of four sequences, prefill.
pub const FLOAT_ROWS: &[usize] = &[1, 4, 128];

/// The activation rows `format` runs at.
pub fn rows(format: Format) -> &'static [usize] {
    match format {
        Format::Float(_) => FLOAT_ROWS,
        Format::Isq(_) => ROWS,
    }
}

/// The distinct projection shapes of one layer plus the LM head: `(name, out, in)`.
pub fn projections(p: &Preset) -> Vec<(Proj, usize, usize)> {
    let (h, qd, kvd) = (p.hidden, p.heads * p.head_dim, p.kv_heads * p.head_dim);
    vec![
        (Proj::Q, qd, h),
        (Proj::KV, kvd, h),
        (Proj::O, h, qd),
        (Proj::GateUp, p.intermediate, h),
        (Proj::Down, h, p.intermediate),
        (Proj::LmHead, p.vocab, h),
    ]
}

/// Activations run in the float format's own dtype (as a model loaded in that dtype does),
/// and in the case's dtype for quantized formats.
pub fn act_dtype(format: Format, dtype: DType) -> DType {
    match format {
        Format::Float(d) => d,
        Format::Isq(_) => dtype,
    }
}

pub fn cost(m: usize, out_dim: usize, in_dim: usize, format: Format, dtype: DType) -> Cost {
    let act = act_dtype(format, dtype);
    Cost::matmul(
        m as u64,
        out_dim as u64,
        in_dim as u64,
        elem_bytes(act),
        format.weight_bytes(out_dim, in_dim, act),
    )
}

pub fn specs(p: &Preset, ctx: &Ctx) -> anyhow::Result<Vec<Spec>> {
    let mut out = Vec::new();
    for format in Format::all() {
        for (proj, n, k) in projections(p) {
            for &m in rows(format) {
                let id = CaseId::preset(
                    &p.name,
                    Case::QuantMatmul {
                        format: format.id(),
                        proj,
                        m,
                    },
                );
                let eff = format.effective(k);
                let shape = format!(
                    "x=[{m},{k}] W=[{n},{k}] {} stored as {}",
                    dtype_name(act_dtype(format, ctx.dtype)),
                    eff.name()
                );
                let c = cost(m, n, k, format, ctx.dtype);
                let mem = 3 * (n * k) as u64 * 4 + 2 * ((m * (n + k)) as u64) * 4;
                let dtype = ctx.dtype;
                let seed = 100 + n as u64 * 7 + k as u64;
                let spec = Spec::new(
                    id,
                    act_dtype(format, ctx.dtype),
                    shape,
                    c,
                    mem,
                    Box::new(move |dev: &Device| {
                        let r: Box<dyn Runner> =
                            Box::new(QmmCase::new(m, n, k, format, dtype, seed, dev)?);
                        Ok(r)
                    }),
                );
                out.push(match format.unsupported_on(&ctx.device) {
                    Some(why) => spec.skipped(why),
                    None => spec,
                });
            }
        }
    }
    Ok(out)
}

pub struct QmmCase {
    pub layer: Arc<dyn QuantMethod>,
    pub x: Tensor,
    pub rel_error: f64,
    extra: serde_json::Value,
}

impl QmmCase {
    pub fn new(
        m: usize,
        n: usize,
        k: usize,
        format: Format,
        dtype: DType,
        seed: u64,
        dev: &Device,
    ) -> Result<Self> {
        let layer = quant::linear(n, k, seed, format, dtype, dev)?;
        let x = randn((1, m, k), 1.0, seed + 1, act_dtype(format, dtype), dev)?;
        // Reference: the same weights and inputs, f32 all the way.
        let w_ref = weight(n, k, seed, DType::F32, dev)?;
        let y_ref = x.to_dtype(DType::F32)?.broadcast_matmul(&w_ref.t()?)?;
        let y = crate::api::qmatmul(&*layer, &x)?;
        let rel_error = rel_error(&y, &y_ref)?;
        let extra = serde_json::json!({
            "format": format.name(),
            "effective_format": format.effective(k).name(),
            "rel_error": rel_error,
            "weight_bytes": format.weight_bytes(n, k, dtype),
        });
        Ok(Self {
            layer,
            x,
            rel_error,
            extra,
        })
    }
}

impl Runner for QmmCase {
    fn run(&mut self) -> Result<()> {
        crate::api::qmatmul(&*self.layer, &self.x)?;
        Ok(())
    }
    fn extra(&self) -> serde_json::Value {
        self.extra.clone()
    }
}
