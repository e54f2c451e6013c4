//! Seeded inputs and weights, so every run of a case computes on the same numbers.

use anyhow::Result;
use candle_core::{DType, Device, Shape, Tensor};
use mistralrs_quant::{Comm, Id, ShardedVarBuilder};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, Normal};
use std::collections::HashMap;
use std::sync::Arc;

/// A tensor of normal values (mean 0, standard deviation `std`) from a seeded generator,
/// generated in f32 on the host, then cast to `dtype` and moved to `device`.
pub fn randn(
    shape: impl Into<Shape>,
    std: f32,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let shape: Shape = shape.into();
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(0f32, std)?;
    let data: Vec<f32> = (0..shape.elem_count())
        .map(|_| normal.sample(&mut rng))
        .collect();
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?
        .to_dtype(dtype)?
        .to_device(device)?)
}

/// A weight matrix `[out, in]` at the scale of a trained model's linear layer
/// (standard deviation `1/sqrt(in)`, so activations keep their size through the layer).
pub fn weight(
    out_dim: usize,
    in_dim: usize,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    randn(
        (out_dim, in_dim),
        1.0 / (in_dim as f32).sqrt(),
        seed,
        dtype,
        device,
    )
}

/// Token ids in `0..vocab` from a seeded generator, shape `[1, n]`.
pub fn token_ids(n: usize, vocab: usize, seed: u64, device: &Device) -> Result<Tensor> {
    use rand::Rng;
    let mut rng = StdRng::seed_from_u64(seed);
    let ids: Vec<u32> = (0..n).map(|_| rng.random_range(0..vocab as u32)).collect();
    Ok(Tensor::from_vec(ids, (1, n), device)?)
}

/// A mistral.rs `ShardedVarBuilder` over in-memory tensors: the same builder type the
/// engine's layers are constructed from when it loads safetensors.
pub fn var_builder(
    tensors: HashMap<String, Tensor>,
    dtype: DType,
    device: &Device,
) -> ShardedVarBuilder {
    crate::api::var_builder(tensors, dtype, device)
}

/// A single-device communicator (no tensor parallelism), as the engine makes for one GPU.
pub fn single_comm(device: &Device) -> Result<Arc<Comm>> {
    Ok(Arc::new(Comm::from_device(Id::new(), device, 0, 1)?))
}

/// `‖a − b‖ / ‖b‖` computed in f32.
pub fn rel_error(a: &Tensor, reference: &Tensor) -> Result<f64> {
    let a = a.to_dtype(DType::F32)?.flatten_all()?;
    let b = reference.to_dtype(DType::F32)?.flatten_all()?;
    let num = (&a - &b)?.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    let den = b.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    Ok((num / den).sqrt())
}
