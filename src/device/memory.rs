//! The one memory sampler: peak memory in use while a case or a request runs, sampled on a
//! thread of its own; and the process's peak resident set.

use super::probe::memory_in_use;
use candle_core::Device;

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

    /// Peak bytes in use so far (None where memory cannot be read).
    pub fn peak_bytes(&self) -> Option<u64> {
        self.start
            .map(|_| self.peak.load(std::sync::atomic::Ordering::Relaxed))
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

/// Peak resident set size of this process (VmHWM), bytes.
pub fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(l.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}
