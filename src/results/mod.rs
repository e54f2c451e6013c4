//! Layer 6, results: what a run measured, in the suite's schema.
//!
//! - [`schema`]: a case's outcome in this process ([`Record`]), a summary case
//!   ([`CaseSummary`], with its typed id) and a summary file ([`Summary`]).
//! - [`criterion`]: reading Criterion's own files (estimates, samples, the index of a folder).
//! - [`roofline`]: achieved GB/s and FLOP/s against the device's ceilings.
//! - [`derive`]: figures from several cases (the engine's context slope).
//! - [`writer`]: the summary file, merged case by case across runs.
//! - [`tables`]: the summary as [`crate::util::table::Table`]s.
//!
//! A new output field goes in [`schema`] (with `#[serde(default)]`, so the committed
//! baselines still load). Depends on [`crate::parts`] and everything below it.

pub mod criterion;
pub mod derive;
pub mod roofline;
pub mod schema;
pub mod tables;
pub mod writer;

pub use schema::{CaseSummary, Estimates, Record, RunInfo, Summary, ToolRun};
