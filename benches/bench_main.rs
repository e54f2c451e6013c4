//! The whole suite in one bench target (one binary to build and carry to a GPU machine).
//! `cargo bench -- <filter>` selects cases; `cargo bench -- --list` lists them.
mod benchmarks;

fn main() {
    let mut c = mistral_rs_bench::harness::criterion();
    benchmarks::attention::benches(&mut c);
    benchmarks::ffn::benches(&mut c);
    benchmarks::kv_cache::benches(&mut c);
    benchmarks::quant_matmul::benches(&mut c);
    benchmarks::small_ops::benches(&mut c);
    benchmarks::generation::benches(&mut c);
    benchmarks::peers::benches(&mut c);
    mistral_rs_bench::harness::finish(c);
}
