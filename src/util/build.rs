//! How this binary was built: rustflags, the target features the compiler enabled, the cargo
//! features, the profile and the git commit. CPU figures depend on it (candle selects its
//! quantized CPU kernels at compile time, `#[cfg(target_feature = …)]`), so every result
//! records it and `compare` refuses to compare two builds that differ.

use serde::{Deserialize, Serialize};

/// The build of a binary, as recorded with its results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// The rustflags the crate was compiled with (`.cargo/config.toml` or `RUSTFLAGS`).
    pub rustflags: String,
    /// `target_feature`s enabled at compile time (`avx2`, `fma`, `f16c`, ...), sorted.
    pub target_features: Vec<String>,
    /// Cargo features of this crate (`cuda`, `metal`, `flash-attn`).
    pub cargo_features: Vec<String>,
    /// `release` (benches inherit it) or `debug`.
    pub profile: String,
    pub git_commit: String,
    /// The mistral.rs it links: `mistralrs-core 0.8.1 (crates.io)`, or its version and the
    /// checkout's revision. Not a code path of the suite: two engines are compared on purpose.
    #[serde(default)]
    pub engine: String,
}

impl BuildInfo {
    /// This binary's build.
    pub fn current() -> Self {
        let mut target_features: Vec<String> = env!("MISTRAL_RS_BENCH_TARGET_FEATURES")
            .split(',')
            .filter(|f| !f.is_empty())
            .map(String::from)
            .collect();
        target_features.sort();
        let cargo_features = [
            ("cuda", cfg!(feature = "cuda")),
            ("metal", cfg!(feature = "metal")),
            ("flash-attn", cfg!(feature = "flash-attn")),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(f, _)| f.to_string())
        .collect();
        BuildInfo {
            rustflags: env!("MISTRAL_RS_BENCH_RUSTFLAGS").to_string(),
            target_features,
            cargo_features,
            profile: env!("MISTRAL_RS_BENCH_PROFILE").to_string(),
            git_commit: env!("MISTRAL_RS_BENCH_GIT_COMMIT").to_string(),
            engine: format!(
                "mistralrs-core {} ({})",
                env!("MISTRAL_RS_BENCH_ENGINE_VERSION"),
                env!("MISTRAL_RS_BENCH_ENGINE_SOURCE")
            ),
        }
    }

    /// Whether results of `self` and `other` measured the same code paths: same rustflags,
    /// target features and cargo features (the commit and profile may differ; comparing two
    /// commits is the point).
    pub fn same_code_paths(&self, other: &BuildInfo) -> bool {
        self.flags() == other.flags()
            && self.target_features == other.target_features
            && self.cargo_features == other.cargo_features
    }

    /// The rustflags as a list of flags (`-C target-cpu=native` is one), each once, in order:
    /// cargo concatenates the rustflags of every `.cargo/config.toml` above the build folder,
    /// so a crate copy built inside this one's folder (scripts/bench-mistralrs.sh) passes the
    /// same flag twice, which compiles the same code.
    pub fn flags(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut words = self.rustflags.split_whitespace();
        while let Some(w) = words.next() {
            let flag = match w {
                "-C" | "--cfg" | "-Z" | "--codegen" => {
                    format!("{w} {}", words.next().unwrap_or_default())
                }
                _ => w.to_string(),
            };
            if !out.contains(&flag) {
                out.push(flag);
            }
        }
        out
    }

    /// What differs between two builds, for an error message.
    pub fn differences(&self, other: &BuildInfo) -> Vec<String> {
        let mut d = Vec::new();
        if self.flags() != other.flags() {
            d.push(format!(
                "rustflags `{}` vs `{}`",
                self.rustflags, other.rustflags
            ));
        }
        if self.target_features != other.target_features {
            let only = |a: &[String], b: &[String]| -> Vec<String> {
                a.iter().filter(|f| !b.contains(f)).cloned().collect()
            };
            d.push(format!(
                "target features only in the first: [{}], only in the second: [{}]",
                only(&self.target_features, &other.target_features).join(", "),
                only(&other.target_features, &self.target_features).join(", ")
            ));
        }
        if self.cargo_features != other.cargo_features {
            d.push(format!(
                "cargo features [{}] vs [{}]",
                self.cargo_features.join(", "),
                other.cargo_features.join(", ")
            ));
        }
        d
    }

    /// One line for people: `rustflags "-C target-cpu=native", 42 target features (avx2, fma, …)`.
    pub fn describe(&self) -> String {
        let key: Vec<&str> = ["avx512f", "avx2", "fma", "f16c", "avx"]
            .into_iter()
            .filter(|k| self.target_features.iter().any(|f| f == k))
            .collect();
        format!(
            "rustflags \"{}\", {} target features ({}), {} profile{}",
            self.rustflags,
            self.target_features.len(),
            if key.is_empty() {
                "no AVX".to_string()
            } else {
                key.join(", ")
            },
            self.profile,
            if self.engine.is_empty() {
                String::new()
            } else {
                format!(", {}", self.engine)
            }
        )
    }
}
