//! Layer 7, running: what times cases and requests.
//!
//! - [`harness`]: Criterion integration: the timed loop with device synchronisation, skips,
//!   failures, the summary after each case. `benches/bench_main.rs` calls [`bench_main`].
//! - [`args`]: what the command line asked Criterion to do (list, test, profile, measure).
//! - [`timing`]: the timed loop itself (also used by the fidelity check).
//! - [`profiler`]: pprof flamegraphs for `--profile-time`.
//! - [`worker`], [`pair`]: the bench binary as a long-lived worker, and the paired runner
//!   that drives two of them (two builds) sample by sample in ABBA order.
//! - [`icount`]: instruction counts of component cases under valgrind's callgrind (the bench
//!   binary counting one case, and the controller that starts it).
//! - [`jsonbench`]: the JSON-in/JSON-out protocol of the `mistral-rs-bench` binary.
//!
//! Depends on [`crate::results`] and everything below it.

pub mod args;
pub mod harness;
pub mod icount;
pub mod jsonbench;
pub mod pair;
pub mod profiler;
pub mod timing;
pub mod worker;

/// The bench binary: a paired-runner worker when started as one ([`worker::requested`]),
/// one counted case under valgrind ([`icount::requested`]), else the Criterion run
/// ([`harness::main`]).
pub fn bench_main() -> anyhow::Result<()> {
    if let Some(case) = icount::requested() {
        icount::count_main(&case)
    } else if worker::requested() {
        worker::serve()
    } else {
        harness::main()
    }
}
