//! Layer 7, running: what times cases and requests.
//!
//! - [`harness`]: Criterion integration: the timed loop with device synchronisation, skips,
//!   failures, the summary after each case. `benches/bench_main.rs` calls [`harness::main`].
//! - [`args`]: what the command line asked Criterion to do (list, test, profile, measure).
//! - [`timing`]: the timed loop itself (also used by the fidelity check).
//! - [`profiler`]: pprof flamegraphs for `--profile-time`.
//! - [`jsonbench`]: the JSON-in/JSON-out protocol of the `mistral-rs-bench` binary.
//!
//! Depends on [`crate::results`] and everything below it.

pub mod args;
pub mod harness;
pub mod jsonbench;
pub mod profiler;
pub mod timing;
