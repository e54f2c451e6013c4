//! The device's measured ceilings: device-memory copy bandwidth and dense matmul rate. Every
//! case's achieved GB/s and FLOP/s is reported as a share of these; a share above 100 % is
//! a measurement bug. Measured once per device and cached under `target/mistral-rs-bench/`.
//! The [`Ceilings`] type lives here, beside its measurement; summaries embed it.

use crate::device;
use crate::util::{fmt::now_rfc3339, json, paths::out_dir, stats::median};
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::time::Instant;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ceilings {
    /// `cpu`, `cuda0`, ...
    pub device: String,
    /// CPU model or GPU name (a cached file for another card is measured again).
    pub device_name: String,
    /// Copy bandwidth in GB/s (10⁹ bytes/s), counting bytes read plus bytes written.
    pub copy_gbps: f64,
    /// Bytes of the copied buffer.
    pub copy_bytes: u64,
    /// Dense matmul rate in GFLOP/s.
    pub matmul_gflops: f64,
    /// dtype and size of the matmul.
    pub matmul_dtype: String,
    pub matmul_n: usize,
    /// When measured (RFC 3339, UTC).
    pub measured_at: String,
}

/// Cached ceilings for `device`, measured now if there are none for this hardware.
pub fn get_or_measure(device: &Device) -> Result<Ceilings> {
    let name = device::describe(device);
    if let Ok(c) = json::read::<Ceilings>(&cache_file(device), "a ceilings file") {
        if c.device_name == name {
            return Ok(c);
        }
    }
    measure_and_cache(device)
}

/// Measures the ceilings of `device` now and caches them for the runs that follow (the
/// `ceilings --fresh` command: a run's first step on a lent machine).
pub fn measure_and_cache(device: &Device) -> Result<Ceilings> {
    eprintln!(
        "mistral-rs-bench: measuring ceilings of {} (copy bandwidth, matmul rate)...",
        device::describe(device)
    );
    let c = measure(device)?;
    std::fs::create_dir_all(out_dir())?;
    json::write(&cache_file(device), &c)?;
    Ok(c)
}

fn cache_file(device: &Device) -> std::path::PathBuf {
    out_dir().join(format!("ceilings-{}.json", device::label(device)))
}

fn median_secs(reps: usize, mut f: impl FnMut() -> Result<()>, device: &Device) -> Result<f64> {
    f()?; // warm-up
    device::sync(device)?;
    let mut v = Vec::with_capacity(reps);
    for _ in 0..reps {
        device::sync(device)?;
        let t = Instant::now();
        f()?;
        device::sync(device)?;
        v.push(t.elapsed().as_secs_f64());
    }
    Ok(median(&v))
}

/// Measures the ceilings now.
pub fn measure(device: &Device) -> Result<Ceilings> {
    let (copy_elems, mm_dtype, n, reps) = if device.is_cpu() {
        (64usize << 20, DType::F32, 1024usize, 10usize)
    } else {
        (256usize << 20, DType::BF16, 8192usize, 20usize)
    };
    // Copy: into a preallocated buffer (no allocation in the timed part). On CUDA the
    // driver's device-to-device copy (candle's own copy kernels reach less of the bus);
    // elsewhere an in-place tensor copy.
    let copy_bytes = (copy_elems * 4) as u64;
    let secs = copy_secs(device, copy_elems, reps)?;
    let copy_gbps = 2.0 * copy_bytes as f64 / secs / 1e9;

    let a = Tensor::randn(0f32, 1.0, (n, n), device)?.to_dtype(mm_dtype)?;
    let b = Tensor::randn(0f32, 1.0, (n, n), device)?.to_dtype(mm_dtype)?;
    let secs = median_secs(reps, || Ok(a.matmul(&b).map(|_| ())?), device)?;
    let matmul_gflops = 2.0 * (n as f64).powi(3) / secs / 1e9;
    Ok(Ceilings {
        device: device::label(device),
        device_name: device::describe(device),
        copy_gbps,
        copy_bytes,
        matmul_gflops,
        matmul_dtype: crate::config::dtype_name(mm_dtype).into(),
        matmul_n: n,
        measured_at: now_rfc3339(),
    })
}

#[allow(unused_variables)]
fn copy_secs(device: &Device, elems: usize, reps: usize) -> Result<f64> {
    #[cfg(feature = "cuda")]
    if device.is_cuda() {
        let stream = device.as_cuda_device()?.cuda_stream();
        let src = stream.alloc_zeros::<f32>(elems)?;
        let mut dst = stream.alloc_zeros::<f32>(elems)?;
        return median_secs(reps, || Ok(stream.memcpy_dtod(&src, &mut dst)?), device);
    }
    let src = Tensor::ones(elems, DType::F32, device)?;
    let dst = Tensor::zeros(elems, DType::F32, device)?;
    median_secs(reps, || Ok(dst.slice_set(&src, 0, 0)?), device)
}
