//! Layer 1, configuration: what the user asked for, read once and validated.
//!
//! - [`models`]: `models.toml`, the one source of shapes (presets), and dtype names.
//! - [`profile`]: run profiles (`MISTRALRS_BENCH_PROFILE`: warm-up, measurement, samples).
//!
//! Depends only on [`crate::util`].

pub mod models;
pub mod profile;

pub use models::{
    dtype_name, parse_dtype, ModelSource, Models, Preset, DEFAULT_MODELS, MODELS_ENV,
    MODELS_FILE_ENV,
};
pub use profile::{RunProfile, PROFILE_ENV};
