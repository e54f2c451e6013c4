use criterion::Criterion;
use mistral_rs_bench::harness::{self, GroupOpts};
use mistral_rs_bench::parts;

pub fn benches(c: &mut Criterion) {
    // Components take the run profile; whole-model cases are sampled like `generation`.
    harness::run_part(c, "peers", parts::peers::components);
    harness::run_part_with(
        c,
        "peers",
        parts::peers::end_to_end,
        GroupOpts::end_to_end(),
    );
}
