//! mistral-rs-bench: Criterion benchmarks for each part of the mistral.rs LLM pipeline
//! (attention, FFN, KV cache, quantized matmul, small ops) and for end-to-end generation,
//! on CPU, CUDA and Metal.
//!
//! - [`config`]: `models.toml`, the one source of shapes.
//! - [`parts`]: one module per pipeline part; each defines its cases' set-up, run and cost.
//! - [`harness`]: Criterion integration (profiles, device sync, skipping, summaries).
//! - [`summary`], [`ceilings`]: machine-readable results and roofline figures.

pub mod baseline;
pub mod budget;
pub mod case;
pub mod ceilings;
pub mod compare;
pub mod config;
pub mod device;
pub mod e2e;
pub mod fidelity;
pub mod flame;
pub mod harness;
pub mod jsonbench;
pub mod parts;
pub mod peers_report;
pub mod profiler;
pub mod quant;
pub mod stats;
pub mod summary;
pub mod synth;
pub mod tensors;

/// The mistral.rs release this suite is built against.
pub const MISTRALRS_VERSION: &str = "0.8.1";
