//! What the device has: memory available and in use, cache sizes, GPU names.

use candle_core::Device;

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
    crate::api::device_memory_available(device)
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
