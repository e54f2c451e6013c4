use criterion::Criterion;
use mistral_rs_bench::harness::{self, GroupOpts};
use mistral_rs_bench::parts;

pub fn benches(c: &mut Criterion) {
    harness::run_part_with(
        c,
        "generation",
        parts::generation::specs,
        GroupOpts::end_to_end(),
    );
}
