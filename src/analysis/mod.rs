//! Layer 8, analysis: what the results mean.
//!
//! - [`compare`]: baseline against candidate, regression or noise per case.
//! - [`baseline`]: saving and merging the baselines under `target-baselines/`.
//! - [`budget`]: one decode step from component medians beside the engine's ms/token.
//! - [`fidelity`]: the suite's clock against CUDA events on the same work.
//!
//! A new verdict or derived view goes here. Depends on [`crate::run`] and everything below;
//! nothing below depends on it.

pub mod baseline;
pub mod budget;
pub mod compare;
pub mod fidelity;
