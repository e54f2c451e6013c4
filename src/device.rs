//! Device choice (`MISTRALRS_BENCH_DEVICE`), synchronisation, and what the device is.

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
    if let Ok(s) = std::env::var(DTYPE_ENV) {
        return crate::config::parse_dtype(&s)
            .with_context(|| format!("{DTYPE_ENV}=`{s}` is not one of f32, f16, bf16"));
    }
    Ok(if device.is_cpu() {
        DType::F32
    } else {
        preset_dtype
    })
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
        gpu_name(device)
            .or_else(|| cuda_driver_name(device))
            .unwrap_or_else(|| label(device))
    }
}

/// GPU name and driver as reported by `nvidia-smi` (CUDA only).
pub fn gpu_name(device: &Device) -> Option<String> {
    let candle_core::DeviceLocation::Cuda { gpu_id } = device.location() else {
        return None;
    };
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,driver_version",
            "--format=csv,noheader",
            &format!("--id={gpu_id}"),
        ])
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Bytes of memory a new case may use on `device`, when it can be known.
pub fn available_memory(device: &Device) -> Option<u64> {
    if device.is_cpu() {
        let s = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        return Some(kb * 1024);
    }
    mistralrs_core::MemoryUsage
        .get_memory_available(device)
        .ok()
        .map(|b| b as u64)
}

/// Size of the largest (last-level) CPU cache, from sysfs. Cases whose bytes fit in it run
/// from cache when repeated, so their GB/s can exceed the DRAM copy ceiling.
pub fn last_level_cache_bytes(device: &Device) -> Option<u64> {
    if device.is_cuda() {
        return cuda_l2_bytes(device);
    }
    if !device.is_cpu() {
        return None;
    }
    let mut best: Option<(u32, u64)> = None;
    for idx in 0..8 {
        let base = format!("/sys/devices/system/cpu/cpu0/cache/index{idx}");
        let Ok(level) = std::fs::read_to_string(format!("{base}/level")) else {
            continue;
        };
        let Ok(size) = std::fs::read_to_string(format!("{base}/size")) else {
            continue;
        };
        let level: u32 = level.trim().parse().ok()?;
        let size = size.trim();
        let bytes = if let Some(k) = size.strip_suffix('K') {
            k.parse::<u64>().ok()? * 1024
        } else if let Some(m) = size.strip_suffix('M') {
            m.parse::<u64>().ok()? * 1024 * 1024
        } else {
            size.parse::<u64>().ok()?
        };
        if best.is_none_or(|(l, _)| level > l) {
            best = Some((level, bytes));
        }
    }
    best.map(|(_, b)| b)
}

/// The CUDA driver context behind `device`.
#[cfg(feature = "cuda")]
fn cuda_context(device: &Device) -> Option<std::sync::Arc<cudarc::driver::CudaContext>> {
    Some(
        device
            .as_cuda_device()
            .ok()?
            .cuda_stream()
            .context()
            .clone(),
    )
}

/// The GPU's L2 cache size (CUDA).
#[allow(unused_variables)]
fn cuda_l2_bytes(device: &Device) -> Option<u64> {
    #[cfg(feature = "cuda")]
    {
        use cudarc::driver::sys::CUdevice_attribute;
        let l2 = cuda_context(device)?
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)
            .ok()?;
        return Some(l2 as u64);
    }
    #[allow(unreachable_code)]
    None
}

/// GPU name from the driver (CUDA), when `nvidia-smi` is not there.
#[allow(unused_variables)]
pub fn cuda_driver_name(device: &Device) -> Option<String> {
    #[cfg(feature = "cuda")]
    {
        return cuda_context(device)?.name().ok();
    }
    #[allow(unreachable_code)]
    None
}

/// Memory in use now: on CUDA the whole card's (total − free, from the driver), on the CPU
/// this process's resident set (`/proc/self/statm`). Bytes.
#[allow(unused_variables)]
pub fn memory_in_use(device: &Device) -> Option<u64> {
    if device.is_cpu() {
        let s = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
        return Some(pages * 4096);
    }
    #[cfg(feature = "cuda")]
    {
        let ctx = cuda_context(device)?;
        ctx.bind_to_thread().ok()?;
        let (free, total) = cudarc::driver::result::mem_get_info().ok()?;
        return Some((total - free) as u64);
    }
    #[allow(unreachable_code)]
    None
}

/// Models loaded so far by this process (mistral.rs engines and peer models).
static MODELS_LOADED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts a model load; true for the process's first. Memory in use is shared by the whole
/// process (and, on a GPU, the card): a model dropped before another may leave its memory in
/// an allocator pool that the next one reuses, so only the first model's footprint is clean.
pub fn note_model_load() -> bool {
    MODELS_LOADED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0
}

/// Peak memory in use while a case runs, sampled every 2 ms on a thread of its own (from
/// its start, after the model is loaded, to its report): what a user sizing a card needs.
/// On CUDA it is the whole card (CUDA context, weights, KV cache, allocator pools); on the
/// CPU the process's resident set.
pub struct PeakMem {
    kind: &'static str,
    start: Option<u64>,
    /// In use before the model was loaded: `peak − before_load` is the engine's own
    /// footprint (weights, caches, activations, allocator pools), whatever else the
    /// process or card held.
    before_load: Option<u64>,
    /// The model is the first of its process (its footprint is clean).
    first_model: bool,
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl PeakMem {
    /// Starts sampling; `before_load` is what was in use before the model was loaded.
    pub fn start(device: &Device, before_load: Option<u64>, first_model: bool) -> PeakMem {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let start = memory_in_use(device);
        let peak = std::sync::Arc::new(AtomicU64::new(start.unwrap_or(0)));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        if start.is_some() {
            let (d, p, s) = (device.clone(), peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    if let Some(m) = memory_in_use(&d) {
                        p.fetch_max(m, Ordering::Relaxed);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            });
        }
        PeakMem {
            kind: if device.is_cpu() {
                "process resident set (RSS)"
            } else {
                "whole device in use (total - free)"
            },
            start,
            before_load,
            first_model,
            peak,
            stop,
        }
    }

    /// `{kind, start_mib, peak_mib, footprint_mib}`, or null where memory cannot be read.
    pub fn report(&self) -> serde_json::Value {
        let Some(start) = self.start else {
            return serde_json::Value::Null;
        };
        let mib = |b: u64| (b as f64 / (1u64 << 20) as f64 * 10.0).round() / 10.0;
        let peak = self.peak.load(std::sync::atomic::Ordering::Relaxed);
        let footprint = self
            .before_load
            .filter(|_| self.first_model)
            .map(|b| mib(peak.saturating_sub(b)));
        serde_json::json!({
            "kind": self.kind,
            "start_mib": mib(start),
            "peak_mib": mib(peak),
            "before_load_mib": self.before_load.map(mib),
            "footprint_mib": footprint,
            "footprint_note": (!self.first_model).then_some(
                "not measured: an earlier model of this process shares the memory \
                 (run one model per process, as scripts/peers/run.sh does)"
            ),
        })
    }
}

impl Drop for PeakMem {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
