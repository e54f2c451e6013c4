//! The engine-API adapter (`src/api/`): each wrapper computes what the engine's item computes,
//! checked against plain candle on the CPU. CI builds the crates.io release (mistralrs-core
//! 0.8.1); the same tests pass on a 0.9 checkout built with `engine-0_9` (the run is in
//! docs/upstream.md).

use anyhow::Result;
use candle_core::{DType, Device, IndexOp, Tensor};
use mistral_rs_bench::api;
use mistral_rs_bench::parts::quant::{self, Format};
use mistral_rs_bench::parts::tensors::{randn, token_ids, weight};
use mistralrs_quant::IsqType;
use std::collections::HashMap;

fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    Ok((a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?)
}

#[test]
fn the_recorded_engine_is_the_one_in_the_lock_file() {
    let lock: toml::Table = toml::from_str(include_str!("../Cargo.lock")).unwrap();
    let core = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str() == Some("mistralrs-core"))
        .unwrap();
    assert_eq!(api::ENGINE_VERSION, core["version"].as_str().unwrap());
    assert_eq!(mistral_rs_bench::MISTRALRS_VERSION, api::ENGINE_VERSION);
    let registry = core
        .get("source")
        .and_then(|s| s.as_str())
        .is_some_and(|s| s.starts_with("registry+"));
    assert_eq!(
        api::ENGINE_SOURCE == "crates.io",
        registry,
        "{}",
        api::ENGINE_SOURCE
    );
}

#[test]
fn qmatmul_is_x_times_w_transposed() -> Result<()> {
    let dev = Device::Cpu;
    let layer = quant::linear(48, 64, 3, Format::Float(DType::F32), DType::F32, &dev)?;
    let x = randn((1, 5, 64), 1.0, 4, DType::F32, &dev)?;
    let w = weight(48, 64, 3, DType::F32, &dev)?;
    let want = x.broadcast_matmul(&w.t()?)?;
    let got = api::qmatmul(&*layer, &x)?;
    assert_eq!(got.dims(), &[1, 5, 48]);
    assert!(max_abs_diff(&got, &want)? < 1e-4);
    // a GGUF format casts the activation to f32 and back: f16 in, f16 out, close to the f32 product
    let q8 = quant::linear(64, 256, 5, Format::Isq(IsqType::Q8_0), DType::F16, &dev)?;
    let xh = randn((1, 2, 256), 1.0, 6, DType::F16, &dev)?;
    let y = api::qmatmul(&*q8, &xh)?;
    assert_eq!(y.dtype(), DType::F16);
    let want = xh
        .to_dtype(DType::F32)?
        .broadcast_matmul(&weight(64, 256, 5, DType::F32, &dev)?.t()?)?;
    let err = mistral_rs_bench::parts::tensors::rel_error(&y, &want)?;
    assert!(err < 0.02, "Q8_0 relative error {err}");
    Ok(())
}

#[test]
fn embed_returns_the_rows_of_the_ids() -> Result<()> {
    let dev = Device::Cpu;
    let table = randn((50, 16), 1.0, 7, DType::F32, &dev)?;
    let mut m = HashMap::new();
    m.insert("weight".to_string(), table.clone());
    let e = api::embedding(50, 16, api::var_builder(m, DType::F32, &dev))?;
    let ids = token_ids(6, 50, 8, &dev)?;
    let got = api::embed(&e, &ids, DType::F32)?;
    assert_eq!(got.dims(), &[1, 6, 16]);
    let want = table.index_select(&ids.flatten_all()?, 0)?.unsqueeze(0)?;
    assert_eq!(max_abs_diff(&got, &want)?, 0.0);
    Ok(())
}

#[test]
fn causal_mask_hides_the_future_only() -> Result<()> {
    let dev = Device::Cpu;
    assert!(api::causal_mask(&token_ids(1, 10, 1, &dev)?, DType::F32)?.is_none());
    let m = api::causal_mask(&token_ids(4, 10, 1, &dev)?, DType::F32)?.unwrap();
    let rows: Vec<Vec<f32>> = m.to_dtype(DType::F32)?.to_vec2()?;
    assert_eq!(rows.len(), 4);
    for (i, row) in rows.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            if j <= i {
                assert_eq!(*v, 0.0, "({i},{j})");
            } else {
                assert!(v.is_infinite() && *v < 0.0, "({i},{j}) = {v}");
            }
        }
    }
    Ok(())
}

#[test]
fn rope_at_an_offset_is_the_same_rotation_as_inside_a_prefill() -> Result<()> {
    // Rotating 6 tokens from position 0 and then taking token 4 equals rotating that one token
    // alone at offset 4: the positions reach the engine's RoPE as the engine passes them.
    let dev = Device::Cpu;
    let (heads, hd) = (2, 16);
    let rope =
        mistralrs_core::layers::RotaryEmbedding::new(10000.0, hd, 64, &dev, true, DType::F32)?;
    let q = randn((1, heads, 6, hd), 1.0, 9, DType::F32, &dev)?;
    let k = randn((1, heads, 6, hd), 1.0, 10, DType::F32, &dev)?;
    let (qa, ka) = api::rope(&rope, &q, &k, &api::RopePositions::new(0, 1, 6, &dev)?)?;
    let q4 = q.i((.., .., 4..5, ..))?.contiguous()?;
    let k4 = k.i((.., .., 4..5, ..))?.contiguous()?;
    let (qb, kb) = api::rope(&rope, &q4, &k4, &api::RopePositions::new(4, 1, 1, &dev)?)?;
    assert!(max_abs_diff(&qa.i((.., .., 4..5, ..))?, &qb)? < 1e-5);
    assert!(max_abs_diff(&ka.i((.., .., 4..5, ..))?, &kb)? < 1e-5);
    // and position 4 is not position 0
    let (q0, _) = api::rope(&rope, &q4, &k4, &api::RopePositions::new(0, 1, 1, &dev)?)?;
    assert!(max_abs_diff(&q0, &qb)? > 1e-2);
    Ok(())
}
