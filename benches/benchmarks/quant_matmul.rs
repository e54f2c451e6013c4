use criterion::Criterion;
use mistral_rs_bench::{harness, parts};

pub fn benches(c: &mut Criterion) {
    harness::run_part(c, "quant_matmul", parts::quant_matmul::specs);
}
