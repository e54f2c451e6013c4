// Records what the binary was built from and how: the git commit, the rustflags, the target
// features the compiler enabled and the profile (shown in every result, so CPU figures say
// which code path of candle's compile-time-selected kernels they measured).
fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=MISTRAL_RS_BENCH_GIT_COMMIT={commit}");
    // CARGO_ENCODED_RUSTFLAGS separates flags with 0x1f.
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS")
        .unwrap_or_default()
        .split('\x1f')
        .filter(|f| !f.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    println!("cargo:rustc-env=MISTRAL_RS_BENCH_RUSTFLAGS={flags}");
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    println!("cargo:rustc-env=MISTRAL_RS_BENCH_TARGET_FEATURES={features}");
    let profile = std::env::var("PROFILE").unwrap_or_default();
    println!("cargo:rustc-env=MISTRAL_RS_BENCH_PROFILE={profile}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-env-changed=RUSTFLAGS");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
}
