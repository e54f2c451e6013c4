//! Layer 2, devices: which device (`MISTRALRS_BENCH_DEVICE`), synchronisation, what the
//! hardware is, and what it can do.
//!
//! - this file: selection, the compute dtype, labels, `sync`, a description of the hardware.
//! - [`probe`]: memory available and in use, cache sizes, GPU names.
//! - [`memory`]: the one memory sampler (peak while a case or a request runs).
//! - [`ceilings`]: the measured copy bandwidth and matmul rate every roofline figure uses.
//! - [`insitu`]: stack snapshots of every thread while the engine runs, split by part.
//!
//! A new backend (another GPU API) goes here: parsing in [`parse_device`], then a `sync`,
//! a label and probes. Depends on [`crate::config`] and [`crate::util`].

pub mod ceilings;
pub mod insitu;
pub mod memory;
pub mod probe;

pub use probe::{available_memory, gpu_name, last_level_cache_bytes, memory_in_use};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};

/// Environment variable that picks the device: `cpu`, `cuda[:N]` or `metal[:N]`.
pub const DEVICE_ENV: &str = "MISTRALRS_BENCH_DEVICE";
/// Environment variable that overrides the dtype of component cases (`f32|f16|bf16`).
pub const DTYPE_ENV: &str = "MISTRALRS_BENCH_DTYPE";

/// The default device of this build: the first GPU of the compiled backend, else the CPU.
pub fn default_spec() -> &'static str {
    if cfg!(feature = "cuda") {
        "cuda:0"
    } else if cfg!(feature = "metal") {
        "metal:0"
    } else {
        "cpu"
    }
}

/// Parses `cpu`, `cuda`, `cuda:N`, `metal`, `metal:N` and opens the device.
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    let (kind, ordinal) = match spec.split_once(':') {
        Some((k, n)) => {
            let n: usize = n
                .parse()
                .with_context(|| format!("device `{spec}`: `{n}` is not a device ordinal"))?;
            (k.to_string(), n)
        }
        None => (spec.clone(), 0),
    };
    match kind.as_str() {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if !cfg!(feature = "cuda") {
                bail!("device `{spec}`: this build has no CUDA support (build with `--features cuda`)");
            }
            Device::new_cuda(ordinal).with_context(|| format!("device `{spec}`: cannot open"))
        }
        "metal" => {
            if !cfg!(feature = "metal") {
                bail!("device `{spec}`: this build has no Metal support (build with `--features metal`)");
            }
            Device::new_metal(ordinal).with_context(|| format!("device `{spec}`: cannot open"))
        }
        other => bail!("unknown device `{other}`: use cpu, cuda[:N] or metal[:N]"),
    }
}

/// The device chosen by `MISTRALRS_BENCH_DEVICE`, or this build's default.
pub fn from_env() -> Result<Device> {
    let spec = std::env::var(DEVICE_ENV).unwrap_or_else(|_| default_spec().to_string());
    parse_device(&spec)
}

/// The dtype component cases run in: `MISTRALRS_BENCH_DTYPE`, else f32 on CPU (candle's CPU
/// kernels are fastest there, and it is what the engine computes CPU attention in) and the
/// preset's dtype on a GPU.
pub fn compute_dtype(device: &Device, preset_dtype: DType) -> Result<DType> {
    if let Some(d) = dtype_override()? {
        return Ok(d);
    }
    Ok(if device.is_cpu() {
        DType::F32
    } else {
        preset_dtype
    })
}

/// The dtype `MISTRALRS_BENCH_DTYPE` asks for, if set: component cases run in it, and the
/// engine loads its models in it (instead of its own `Auto` choice).
pub fn dtype_override() -> Result<Option<DType>> {
    match std::env::var(DTYPE_ENV) {
        Ok(s) if !s.trim().is_empty() => crate::config::parse_dtype(&s)
            .map(Some)
            .with_context(|| format!("{DTYPE_ENV}=`{s}` is not one of f32, f16, bf16")),
        _ => Ok(None),
    }
}

/// A short label used in case ids and file names: `cpu`, `cuda0`, `metal0`.
pub fn label(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal{gpu_id}"),
    }
}

/// Waits until all work queued on `device` has finished. A no-op on the CPU.
pub fn sync(device: &Device) -> Result<()> {
    device.synchronize().context("device synchronize failed")
}

/// A human description of the hardware behind `device` (CPU model, or GPU name).
pub fn describe(device: &Device) -> String {
    if device.is_cpu() {
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        format!("{model} ({threads} threads)")
    } else {
        probe::gpu_name(device)
            .or_else(|| probe::cuda_driver_name(device))
            .unwrap_or_else(|| label(device))
    }
}
