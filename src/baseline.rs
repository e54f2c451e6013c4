//! Saved baselines: `target-baselines/<machine>/` holds Criterion's estimates and samples of
//! every case of a run (`criterion/…/new/{benchmark,estimates,sample}.json`), the suite's
//! summary, and `metadata.json` (git commit, mistral.rs version, device, card, driver, CPU,
//! date, command line). A baseline is never overwritten unless asked (`--force`).

use crate::summary::{criterion_dir, index_criterion, out_dir};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Root of the committed baselines.
pub fn baselines_root() -> PathBuf {
    crate::config::crate_root().join("target-baselines")
}

/// Copies the current Criterion results and summaries into `target-baselines/<machine>/`.
pub fn save(machine: &str, force: bool, note: Option<&str>) -> Result<PathBuf> {
    if machine.is_empty() || machine.contains('/') || machine.starts_with('.') {
        bail!("machine name `{machine}` must be a plain folder name (e.g. cpu-2core, cuda-h100)");
    }
    let dest = baselines_root().join(machine);
    if dest.exists() {
        if !force {
            bail!("{} exists; pass --force to replace it", dest.display());
        }
        std::fs::remove_dir_all(&dest)
            .with_context(|| format!("cannot remove {}", dest.display()))?;
    }
    let crit = criterion_dir();
    let index = index_criterion(&crit);
    if index.is_empty() {
        bail!(
            "{}: no Criterion results to save (run cargo bench first)",
            crit.display()
        );
    }
    let mut n = 0;
    for dir in index.values() {
        let rel = dir
            .strip_prefix(&crit)
            .expect("indexed under the criterion dir");
        let to = dest.join("criterion").join(rel);
        std::fs::create_dir_all(&to)?;
        for f in ["benchmark.json", "estimates.json", "sample.json"] {
            let src = dir.join(f);
            if src.is_file() {
                std::fs::copy(&src, to.join(f))
                    .with_context(|| format!("cannot copy {}", src.display()))?;
            }
        }
        n += 1;
    }
    let mut summaries = Vec::new();
    if let Ok(rd) = std::fs::read_dir(out_dir()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if (name.starts_with("summary-")
                || name.starts_with("ceilings-")
                || name.starts_with("fidelity-"))
                && name.ends_with(".json")
                && !name.contains("-smoke")
            {
                std::fs::copy(e.path(), dest.join(&name))?;
                summaries.push(name);
            }
        }
    }
    let dev = crate::device::from_env().ok();
    let meta = serde_json::json!({
        "machine": machine,
        "git_commit": env!("MISTRAL_RS_BENCH_GIT_COMMIT"),
        "mistralrs_version": crate::MISTRALRS_VERSION,
        "device": dev.as_ref().map(crate::device::label),
        "device_name": dev.as_ref().map(crate::device::describe),
        "cpu": crate::device::describe(&candle_core::Device::Cpu),
        "saved_at": crate::summary::now_rfc3339(),
        "cases": n,
        "summaries": summaries,
        "profile": std::env::var(crate::harness::PROFILE_ENV).unwrap_or_else(|_| "default".into()),
        "models": std::env::var(crate::config::MODELS_ENV).unwrap_or_else(|_| crate::config::DEFAULT_MODELS.into()),
        "command": note,
    });
    std::fs::write(
        dest.join("metadata.json"),
        serde_json::to_string_pretty(&meta)?,
    )?;
    Ok(dest)
}

/// Resolves a baseline argument: a path, or a machine name under `target-baselines/`.
pub fn resolve(arg: &str) -> PathBuf {
    let p = Path::new(arg);
    if p.exists() {
        p.to_path_buf()
    } else {
        baselines_root().join(arg)
    }
}
