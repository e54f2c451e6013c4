//! mistral-rs-bench: Criterion benchmarks for each part of the mistral.rs LLM pipeline
//! (attention, FFN, KV cache, quantized matmul, small ops) and for end-to-end generation,
//! on CPU, CUDA and Metal.
//!
//! The crate is layered; each layer depends only on the layers above it in this list (a
//! test, `tests/layout.rs`, checks every `crate::` path against it):
//!
//! | layer | folder | what it holds |
//! |---|---|---|
//! | 0 | [`util`], [`api`] | paths, JSON files, units, statistics, the table type; the engine API adapter (mistral.rs 0.8.1 or 0.9) |
//! | 1 | [`config`] | `models.toml` presets, run profiles |
//! | 2 | [`device`] | device selection, sync, probes, memory sampler, measured ceilings |
//! | 3 | [`case`] | typed case ids, cost, the spec/runner of a case, status |
//! | 4 | [`engine`] | mistral.rs loaded and driven end to end, synthetic models, the model cache |
//! | 5 | [`parts`] | one module per pipeline part, and the registry of parts |
//! | 6 | [`results`] | the summary schema, Criterion's files, roofline, the summary writer |
//! | 7 | [`run`] | the Criterion harness, the profiler, the JSON protocol |
//! | 8 | [`analysis`], [`report`] | compare, baselines, budget, fidelity; peers report, plots, flamegraph diffs |
//!
//! `src/main.rs` is the command line only; `benches/bench_main.rs` hands the registry to the
//! harness.

pub mod analysis;
pub mod api;
pub mod case;
pub mod config;
pub mod device;
pub mod engine;
pub mod parts;
pub mod report;
pub mod results;
pub mod run;
pub mod util;

/// The mistral.rs release this suite is built against (its mistralrs-core version).
pub const MISTRALRS_VERSION: &str = api::ENGINE_VERSION;
