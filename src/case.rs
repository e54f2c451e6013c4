//! What a bench case is: its identity, its cost (FLOPs and bytes), how to set it up, and how
//! to run one timed iteration. Every pipeline part in `crate::parts` produces these; the
//! harness (`crate::harness`) times them and writes the summaries.

use anyhow::Result;
use candle_core::{DType, Device};
use serde::Serialize;

/// Work done by one iteration of a case, the basis of Criterion's `Throughput` and of the
/// roofline figures (achieved GB/s and FLOP/s against the device's measured ceilings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Cost {
    /// Floating-point operations (a multiply-add counts 2).
    pub flops: u64,
    /// Bytes that must cross the memory bus at least once: inputs read plus outputs written.
    pub bytes: u64,
}

impl Cost {
    pub const fn new(flops: u64, bytes: u64) -> Self {
        Self { flops, bytes }
    }

    /// `y[m,n] = x[m,k] · w[n,k]ᵀ`: `2mnk` FLOPs; reads x and w, writes y.
    /// `w_bytes` is the size of the (possibly quantized) weight.
    pub fn matmul(m: u64, n: u64, k: u64, act_elem: u64, w_bytes: u64) -> Self {
        Self {
            flops: 2 * m * n * k,
            bytes: (m * k + m * n) * act_elem + w_bytes,
        }
    }

    /// Arithmetic intensity in FLOP/byte.
    pub fn intensity(&self) -> f64 {
        if self.bytes == 0 {
            0.0
        } else {
            self.flops as f64 / self.bytes as f64
        }
    }
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            flops: self.flops + o.flops,
            bytes: self.bytes + o.bytes,
        }
    }
}

/// Size in bytes of one element of `dtype`.
pub fn elem_bytes(dtype: DType) -> u64 {
    dtype.size_in_bytes() as u64
}

/// One timed unit of work, already set up. Set-up (weights, quantization, caches) happens
/// when the runner is built, never inside `run`.
pub trait Runner {
    /// Enqueues one iteration of the work. The harness synchronises the device before it
    /// starts the clock and after the last iteration, so `run` itself must not synchronise.
    fn run(&mut self) -> Result<()>;

    /// Cases whose `run` changes state that the next iteration must not see (a cache that
    /// grows) return true; the harness then calls [`Runner::reset`] before every iteration,
    /// outside the timed region, and times each iteration on its own.
    fn needs_reset(&self) -> bool {
        false
    }

    /// Puts the state back as it was before the first iteration (untimed).
    fn reset(&mut self) -> Result<()> {
        Ok(())
    }

    /// Runners that time themselves (end-to-end cases, where only part of a request is the
    /// measured quantity, e.g. decode after the first token) return that duration; the
    /// harness then sums these instead of reading its own clock. `None`: the harness times.
    fn timed(&mut self) -> Result<Option<std::time::Duration>> {
        Ok(None)
    }

    /// Facts the set-up learnt that belong in the summary (a quantized type's measured
    /// error, the type the engine actually fell back to, bytes allocated, ...).
    fn extra(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// A runner's builder: called once, lazily, only if Criterion selects the case.
pub type Build = Box<dyn FnOnce(&Device) -> Result<Box<dyn Runner>>>;

/// A bench case before set-up: identity, shape, cost and how to build it.
pub struct Spec {
    /// Criterion group: the pipeline part (`attention`, `ffn`, `kv_cache`, ...).
    pub group: &'static str,
    /// Case id inside the group, `preset/…/…`, stable across runs (baselines key on it).
    pub id: String,
    /// Dtype of activations (and unquantized weights).
    pub dtype: DType,
    /// Human-readable shape, e.g. `q=[1,9,1,64] kv=[1,3,512,64]`.
    pub shape: String,
    /// Work of one iteration.
    pub cost: Cost,
    /// Tokens one iteration processes (end-to-end cases): Criterion's throughput is then
    /// tokens/s instead of FLOP/s.
    pub tokens: Option<u64>,
    /// Bytes of device memory the case needs (weights, caches, temporaries), for skipping
    /// cases that do not fit.
    pub mem_bytes: u64,
    /// Why the case cannot run here, decided without building it (unsupported on this
    /// device or build, too large). Skipped cases are listed in the summary with the reason.
    pub skip: Option<String>,
    /// Builds the runner (set-up, outside any timed region).
    pub build: Option<Build>,
}

impl Spec {
    pub fn new(
        group: &'static str,
        id: impl Into<String>,
        dtype: DType,
        shape: impl Into<String>,
        cost: Cost,
        mem_bytes: u64,
        build: Build,
    ) -> Self {
        Self {
            group,
            id: id.into(),
            dtype,
            shape: shape.into(),
            cost,
            tokens: None,
            mem_bytes,
            skip: None,
            build: Some(build),
        }
    }

    /// Marks the case as skipped with a reason.
    pub fn skipped(mut self, why: impl Into<String>) -> Self {
        self.skip = Some(why.into());
        self
    }

    /// Sets the tokens one iteration processes.
    pub fn with_tokens(mut self, tokens: u64) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Full Criterion id, `group/id`.
    pub fn full_id(&self) -> String {
        format!("{}/{}", self.group, self.id)
    }
}

/// What every part's case generator receives.
#[derive(Clone)]
pub struct Ctx {
    pub device: Device,
    /// Dtype of activations and unquantized weights for this preset on this device.
    pub dtype: DType,
}
