//! Layer 8, analysis: what the results mean.
//!
//! - [`compare`]: baseline against candidate, regression or noise per case.
//! - [`paired`]: the pull-request verdict from paired samples of two builds (ABBA pairs,
//!   confirmation of flagged cases in fresh workers).
//! - [`icount`]: the instruction-count verdict (callgrind counts of two builds, per case).
//! - [`sensitivity`]: the measured rates of the paired verdict (injected and A/A trials).
//! - [`baseline`]: saving and merging the baselines under `target-baselines/`.
//! - [`budget`]: one decode step from component medians beside the engine's ms/token.
//! - [`fidelity`]: the suite's clock against CUDA events on the same work.
//! - [`cards`]: two cards side by side, each ratio set against what their ceilings predict.
//!
//! A new verdict or derived view goes here. Depends on [`crate::run`] and everything below;
//! nothing below depends on it.

pub mod baseline;
pub mod budget;
pub mod cards;
pub mod compare;
pub mod fidelity;
pub mod icount;
pub mod paired;
pub mod sensitivity;
