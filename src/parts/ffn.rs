//! `ffn`: the engine's own SiLU-gated MLP, `mistralrs_core::layers::Mlp`, built from a
//! `ShardedVarBuilder` exactly as the llama model builds it, at the preset's shapes, for
//! decode (1 token) and prefill (128, 512 tokens); unquantized, and with gate/up/down
//! quantized at 4 and 8 bits as the engine's loader quantizes them (immediate ISQ).

use crate::case::{elem_bytes, Case, CaseId, Cost, Ctx, Phase, Runner, Spec};
use crate::config::{dtype_name, Preset};
use crate::parts::quant::Format;
use crate::parts::tensors::{randn, single_comm, var_builder, weight};
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use mistralrs_core::layers::{Activation, Mlp};
use mistralrs_quant::IsqType;
use std::collections::HashMap;

/// Token counts: decode, then two prefill sizes.
pub const TOKENS: &[usize] = &[1, 128, 512];

/// Weight formats of the FFN cases.
pub fn formats(dtype: DType) -> Vec<Format> {
    vec![
        Format::Float(dtype),
        Format::Isq(IsqType::Q4K),
        Format::Isq(IsqType::Q8_0),
    ]
}

/// `down(silu(gate(x)) · up(x))`: three matmuls (2·t·h·i FLOPs each); reads the three weights
/// once, the input, and writes the output (the gate/up intermediates are counted too: they
/// round-trip memory in the unfused composition).
pub fn cost(p: &Preset, tokens: usize, format: Format, dtype: DType) -> Cost {
    let (t, h, i) = (tokens as u64, p.hidden as u64, p.intermediate as u64);
    let e = elem_bytes(dtype);
    let w = 2 * format.weight_bytes(p.intermediate, p.hidden, dtype)
        + format.weight_bytes(p.hidden, p.intermediate, dtype);
    Cost {
        flops: 6 * t * h * i,
        bytes: w + (2 * t * h + 3 * t * i) * e,
    }
}

/// The input and widths of one FFN call, for the case's `shape` field.
pub fn shape(p: &Preset, tokens: usize, dt: DType) -> String {
    format!(
        "x=[1,{tokens},{}] h={} i={} {}",
        p.hidden,
        p.hidden,
        p.intermediate,
        dtype_name(dt)
    )
}

/// Decode for one token, prefill for more.
pub fn phase(tokens: usize) -> Phase {
    if tokens == 1 {
        Phase::Decode
    } else {
        Phase::Prefill
    }
}

pub fn specs(p: &Preset, ctx: &Ctx) -> anyhow::Result<Vec<Spec>> {
    let mut out = Vec::new();
    for format in formats(ctx.dtype) {
        for &t in TOKENS {
            let id = CaseId::preset(
                &p.name,
                Case::Ffn {
                    format: format.id(),
                    phase: phase(t),
                    tokens: t,
                },
            );
            let shape = shape(p, t, ctx.dtype);
            let c = cost(p, t, format, ctx.dtype);
            let mem = 3 * (p.hidden * p.intermediate) as u64 * 4 + c.bytes;
            let (preset, dtype) = (p.clone(), ctx.dtype);
            out.push(Spec::new(
                id,
                ctx.dtype,
                shape,
                c,
                mem,
                Box::new(move |dev: &Device| {
                    let r: Box<dyn Runner> =
                        Box::new(FfnCase::new(&preset, t, format, dtype, dev)?);
                    Ok(r)
                }),
            ));
        }
    }
    Ok(out)
}

/// The engine's `Mlp` with seeded weights in `format` (set-up only). Quantized formats are
/// built the way the engine loads a model with ISQ, under `api::with_immediate_isq` (which
/// says why quantizing a built `Mlp` afterwards is not the engine's layer).
pub fn build_mlp(p: &Preset, format: Format, dtype: DType, dev: &Device) -> Result<Mlp> {
    // Host weights, as the engine's loader reads them; the builder's device is `dev`.
    let host = Device::Cpu;
    let wdev = if matches!(format, Format::Isq(_)) {
        &host
    } else {
        dev
    };
    let mut t = HashMap::new();
    t.insert(
        "gate_proj.weight".to_string(),
        weight(p.intermediate, p.hidden, 11, dtype, wdev)?,
    );
    t.insert(
        "up_proj.weight".to_string(),
        weight(p.intermediate, p.hidden, 12, dtype, wdev)?,
    );
    t.insert(
        "down_proj.weight".to_string(),
        weight(p.hidden, p.intermediate, 13, dtype, wdev)?,
    );
    let vb = var_builder(t, dtype, dev);
    let comm = single_comm(dev)?;
    let new = || -> Result<Mlp> {
        Ok(Mlp::new(
            vb,
            p.hidden,
            p.intermediate,
            &None,
            Activation::Silu,
            &comm,
        )?)
    };
    match format {
        Format::Isq(t) => {
            let mlp = crate::api::with_immediate_isq(t, new)?;
            // wait here, in set-up, for the ISQ pool to finish each layer
            for l in [&mlp.gate, &mlp.up, &mlp.down] {
                l.dtype_and_device();
            }
            Ok(mlp)
        }
        Format::Float(_) => new(),
    }
}

pub struct FfnCase {
    pub mlp: Mlp,
    pub x: Tensor,
    extra: serde_json::Value,
}

impl FfnCase {
    pub fn new(
        p: &Preset,
        tokens: usize,
        format: Format,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        let mlp = build_mlp(p, format, dtype, dev)?;
        let x = randn((1, tokens, p.hidden), 1.0, 14, dtype, dev)?;
        let extra = serde_json::json!({
            "format": format.name(),
            "effective_gate_up": format.effective(p.hidden).name(),
            "effective_down": format.effective(p.intermediate).name(),
        });
        Ok(Self { mlp, x, extra })
    }
}

impl Runner for FfnCase {
    fn run(&mut self) -> Result<()> {
        self.mlp.forward(&self.x)?;
        Ok(())
    }
    fn extra(&self) -> serde_json::Value {
        self.extra.clone()
    }
}
