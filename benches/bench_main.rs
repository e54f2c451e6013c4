//! The whole suite in one bench target (one binary to build and carry to a GPU machine):
//! every part of `parts::REGISTRY`. `cargo bench -- <filter>` selects cases;
//! `cargo bench -- --list` lists them.

fn main() -> std::process::ExitCode {
    match mistral_rs_bench::run::bench_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mistral-rs-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
