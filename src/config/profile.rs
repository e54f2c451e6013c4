//! Run profiles: warm-up, measurement time and sample count (`MISTRALRS_BENCH_PROFILE`).

use anyhow::Result;

/// Environment variable that picks a run profile: `quick`, `default` or `full`.
pub const PROFILE_ENV: &str = "MISTRALRS_BENCH_PROFILE";

/// Warm-up, measurement time and sample count of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RunProfile {
    pub name: &'static str,
    pub warm_up_ms: u64,
    pub measurement_ms: u64,
    pub sample_size: usize,
}

impl RunProfile {
    /// Short runs for a lent GPU or a first look: 0.3 s warm-up, 1 s measurement, 10 samples.
    pub const QUICK: RunProfile = RunProfile {
        name: "quick",
        warm_up_ms: 300,
        measurement_ms: 1000,
        sample_size: 10,
    };
    /// The default: 1 s warm-up, 3 s measurement, 20 samples per case.
    pub const DEFAULT: RunProfile = RunProfile {
        name: "default",
        warm_up_ms: 1000,
        measurement_ms: 3000,
        sample_size: 20,
    };
    /// Criterion's own defaults: 3 s warm-up, 5 s measurement, 100 samples.
    pub const FULL: RunProfile = RunProfile {
        name: "full",
        warm_up_ms: 3000,
        measurement_ms: 5000,
        sample_size: 100,
    };

    pub fn from_env() -> Result<RunProfile> {
        match std::env::var(PROFILE_ENV).as_deref() {
            Err(_) | Ok("default") | Ok("") => Ok(Self::DEFAULT),
            Ok("quick") => Ok(Self::QUICK),
            Ok("full") => Ok(Self::FULL),
            Ok(other) => anyhow::bail!("{PROFILE_ENV}=`{other}`: use quick, default or full"),
        }
    }
}
