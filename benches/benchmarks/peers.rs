use criterion::Criterion;
use mistral_rs_bench::harness::{self, GroupOpts};
use mistral_rs_bench::parts;
use std::time::Duration;

pub fn benches(c: &mut Criterion) {
    // Components take the run profile; whole-model cases are sampled like `generation`.
    harness::run_part(c, "peers", parts::peers::components);
    let e2e = GroupOpts {
        sample_size: Some(10),
        flat: true,
        warm_up: Some(Duration::from_millis(100)),
        measurement: Some(Duration::from_millis(100)),
    };
    harness::run_part_with(c, "peers", parts::peers::end_to_end, e2e);
}
