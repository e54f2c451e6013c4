//! A bench case before and after set-up: its [`Spec`] (id, shape, cost, memory, how to
//! build it) and its [`Runner`] (one timed iteration). Every pipeline part in `crate::parts`
//! produces specs; the harness (`crate::run::harness`) times the runners.

use super::{CaseId, Cost, Group};
use anyhow::Result;
use candle_core::{DType, Device};

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

    /// End-to-end cases: the engine's own run split by pipeline part
    /// (`crate::device::insitu`), from extra iterations outside the timed ones; the
    /// symbolised trace is written to `dump` when given. `None`: the case has no attribution.
    fn insitu(
        &mut self,
        _dump: Option<&std::path::Path>,
    ) -> Result<Option<crate::device::insitu::Breakdown>> {
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
    /// The case's typed id (its group is the pipeline part); stable across runs, baselines
    /// key on its string form.
    pub id: CaseId,
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
    /// Why this case is a stand-in: the engine runs another path on this device and dtype,
    /// so the case is a reference, never the engine's cost (budgets leave it out of sums).
    pub stand_in: Option<String>,
}

impl Spec {
    pub fn new(
        id: CaseId,
        dtype: DType,
        shape: impl Into<String>,
        cost: Cost,
        mem_bytes: u64,
        build: Build,
    ) -> Self {
        Self {
            id,
            dtype,
            shape: shape.into(),
            cost,
            tokens: None,
            mem_bytes,
            skip: None,
            build: Some(build),
            stand_in: None,
        }
    }

    /// Marks the case as a stand-in for a path of the engine that no public API reaches.
    pub fn stand_in(mut self, why: impl Into<String>) -> Self {
        self.stand_in = Some(why.into());
        self
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

    /// An end-to-end case (whole requests: tokens per iteration, sampled as requests).
    pub fn is_end_to_end(&self) -> bool {
        self.tokens.is_some()
    }

    /// The pipeline part (Criterion group).
    pub fn group(&self) -> Group {
        self.id.group()
    }

    /// Full Criterion id, `group/…`.
    pub fn full_id(&self) -> String {
        self.id.to_string()
    }
}

/// What every part's case generator receives.
#[derive(Clone)]
pub struct Ctx {
    pub device: Device,
    /// Dtype of activations and unquantized weights for this preset on this device.
    pub dtype: DType,
}
