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
    // A build of uncommitted code says so: its results are not those of the commit alone.
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no", "--"])
        .args([
            "src",
            "benches",
            "build.rs",
            "Cargo.toml",
            "Cargo.lock",
            "models.toml",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| !o.stdout.is_empty());
    let commit = if dirty && commit != "unknown" {
        format!("{commit}+dirty")
    } else {
        commit
    };
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
    // The mistralrs-core this build links, from this crate's Cargo.lock: its version, and
    // whether it came from crates.io or a local checkout (scripts/engine-manifest.py patches
    // one in; its revision comes in MISTRALRS_BENCH_ENGINE_REV, as a checkout made with
    // `git archive` has no .git to ask).
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let lock: toml::Table = toml::from_str(&lock).unwrap_or_default();
    let core = lock
        .get("package")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .find(|p| p.get("name").and_then(|n| n.as_str()) == Some("mistralrs-core"));
    let version = core
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .unwrap_or("unknown");
    let source = match core.and_then(|p| p.get("source")).and_then(|s| s.as_str()) {
        Some(s) if s.starts_with("registry+") => "crates.io".to_string(),
        Some(s) => s.to_string(),
        None => format!(
            "checkout {}",
            std::env::var("MISTRALRS_BENCH_ENGINE_REV")
                .unwrap_or_else(|_| "(revision not given)".into())
        ),
    };
    println!("cargo:rustc-env=MISTRAL_RS_BENCH_ENGINE_VERSION={version}");
    println!("cargo:rustc-env=MISTRAL_RS_BENCH_ENGINE_SOURCE={source}");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-env-changed=MISTRALRS_BENCH_ENGINE_REV");
    let profile = std::env::var("PROFILE").unwrap_or_default();
    println!("cargo:rustc-env=MISTRAL_RS_BENCH_PROFILE={profile}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    // the dirty mark follows the code (cargo scans these folders for changes)
    for p in ["src", "benches", "Cargo.toml", "models.toml", ".git/index"] {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rerun-if-env-changed=RUSTFLAGS");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
}
