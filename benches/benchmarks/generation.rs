use criterion::Criterion;
use mistral_rs_bench::harness::{self, GroupOpts};
use mistral_rs_bench::parts;
use std::time::Duration;

pub fn benches(c: &mut Criterion) {
    // Whole requests take seconds: few samples, one request each (flat sampling).
    let opts = GroupOpts {
        sample_size: Some(10),
        flat: true,
        warm_up: Some(Duration::from_millis(100)),
        measurement: Some(Duration::from_millis(100)),
    };
    harness::run_part_with(c, "generation", parts::generation::specs, opts);
}
