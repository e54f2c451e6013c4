//! Where the suite reads and writes. Every path the suite uses starts from one of these.

use std::path::PathBuf;

/// Environment variable naming the suite's root (where `models.toml` and `models/` are),
/// for binaries run away from the tree they were built in.
pub const ROOT_ENV: &str = "MISTRALRS_BENCH_ROOT";
/// Environment variable naming the folder of the summaries.
pub const OUT_ENV: &str = "MISTRALRS_BENCH_OUT";

/// The suite's root: `MISTRALRS_BENCH_ROOT`, else the crate this binary was built from if it
/// is still there, else the current directory.
pub fn crate_root() -> PathBuf {
    if let Some(p) = std::env::var_os(ROOT_ENV) {
        return PathBuf::from(p);
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if built.join("models.toml").is_file() {
        built
    } else {
        std::env::current_dir().unwrap_or(built)
    }
}

/// Cargo's target directory as Criterion finds it (`CARGO_TARGET_DIR`, else `./target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_root().join("target"))
}

/// Where Criterion writes its results (`CRITERION_HOME`, else `<target>/criterion`).
pub fn criterion_dir() -> PathBuf {
    std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("criterion"))
}

/// Where the suite writes its summaries and cached ceilings: `MISTRALRS_BENCH_OUT`, else
/// `<target>/mistral-rs-bench` (a fresh folder gives a summary of one run only).
pub fn out_dir() -> PathBuf {
    std::env::var_os(OUT_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("mistral-rs-bench"))
}

/// Root of the committed baselines, `target-baselines/`.
pub fn baselines_root() -> PathBuf {
    crate_root().join("target-baselines")
}
