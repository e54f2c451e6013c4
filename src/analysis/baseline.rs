//! Saved baselines: `target-baselines/<machine>/` holds Criterion's estimates and samples of
//! every case of a run (`criterion/…/new/{benchmark,estimates,sample}.json`), the suite's
//! summary, and `metadata.json` (git commit, mistral.rs version, device, card, driver, CPU,
//! date, command line). A baseline is never overwritten unless asked (`--force`).

use crate::results::{criterion, Summary};
use crate::util::build::BuildInfo;
use crate::util::paths::{baselines_root, criterion_dir, out_dir};
use crate::util::{fmt::now_rfc3339, json};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The files of a case's Criterion folder that a baseline keeps.
const CASE_FILES: [&str; 4] = [
    "benchmark.json",
    "estimates.json",
    "sample.json",
    criterion::BUILD_FILE,
];

/// Copies the current Criterion results and summaries into `target-baselines/<machine>/`.
pub fn save(machine: &str, force: bool, note: Option<&str>) -> Result<PathBuf> {
    if machine.is_empty() || machine.contains('/') || machine.starts_with('.') {
        bail!("machine name `{machine}` must be a plain folder name (e.g. cpu-2core, cuda-h100)");
    }
    // how the binary was built (the harness stamps each case; a folder of several builds
    // is refused before anything is replaced)
    let build: Option<BuildInfo> = super::compare::build_of(&criterion_dir())?;
    let dest = baselines_root().join(machine);
    if dest.exists() {
        if !force {
            bail!("{} exists; pass --force to replace it", dest.display());
        }
        std::fs::remove_dir_all(&dest)
            .with_context(|| format!("cannot remove {}", dest.display()))?;
    }
    let crit = criterion_dir();
    let index = criterion::index(&crit);
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
        for f in CASE_FILES {
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
                || name.starts_with("fidelity-")
                || name.starts_with("peers-torch-"))
                && name.ends_with(".json")
                && !name.contains("-smoke")
            {
                std::fs::copy(e.path(), dest.join(&name))?;
                summaries.push(name);
            }
        }
    }
    // The device is the one the summaries were measured on (results saved on another
    // machine than the one that ran them, e.g. a packed GPU run, keep their own card).
    let measured = summaries
        .iter()
        .filter(|n| n.starts_with("summary-"))
        .find_map(|n| Summary::load(&dest.join(n)).ok())
        .map(|s| (s.device, s.device_name));
    let dev = crate::device::from_env().ok();
    let (label, name) = match measured {
        Some((l, n)) => (Some(l), Some(n)),
        None => (
            dev.as_ref().map(crate::device::label),
            dev.as_ref().map(crate::device::describe),
        ),
    };
    let meta = serde_json::json!({
        "machine": machine,
        "git_commit": env!("MISTRAL_RS_BENCH_GIT_COMMIT"),
        "mistralrs_version": crate::MISTRALRS_VERSION,
        "device": label.clone(),
        "device_name": name,
        // the host CPU is known only when the run was on this machine's CPU
        "cpu": (label.as_deref() == Some("cpu"))
            .then(|| crate::device::describe(&candle_core::Device::Cpu)),
        "saved_at": now_rfc3339(),
        "cases": n,
        "summaries": summaries,
        "profile": std::env::var(crate::config::PROFILE_ENV).unwrap_or_else(|_| "default".into()),
        "models": std::env::var(crate::config::MODELS_ENV).unwrap_or_else(|_| crate::config::DEFAULT_MODELS.into()),
        "command": note,
        "build": build,
    });
    json::write(&dest.join("metadata.json"), &meta)?;
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

/// What [`merge`] did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Merged {
    pub added: usize,
    pub replaced: usize,
    /// Cases already in the baseline and left as they were (no `--replace`).
    pub kept: usize,
}

/// Adds another run's cases (same card class) to a saved baseline: its summary's cases
/// (tagged `"machine": tag`, its ceilings kept as `ceilings_machine_<tag>`), and their
/// Criterion estimates and samples. Cases the baseline already has are kept unless
/// `replace`. For results of one hardware class measured over several sessions or machines.
pub fn merge(
    baseline: &Path,
    run_criterion: &Path,
    summary: &Path,
    tag: &str,
    replace: bool,
) -> Result<Merged> {
    use serde_json::Value;
    let read = |p: &Path| -> Result<Value> { json::read(p, "JSON") };
    let src = read(summary)?;
    // one baseline, one build: a run built differently measured other code paths
    if let (Some(a), Some(b)) = (
        super::compare::build_of(baseline)?,
        super::compare::build_of(run_criterion)?,
    ) {
        if !a.same_code_paths(&b) {
            bail!(
                "{} was built differently from {} ({}): save it as a baseline of its own",
                run_criterion.display(),
                baseline.display(),
                a.differences(&b).join("; ")
            );
        }
    }
    let device = src["device"]
        .as_str()
        .with_context(|| format!("{}: not a summary (no device)", summary.display()))?
        .to_string();
    let dest_path = baseline.join(format!("summary-{device}.json"));
    let mut dest = read(&dest_path)?;
    let index = criterion::index(run_criterion);
    let mut done = Merged::default();
    let cases = dest["cases"]
        .as_array_mut()
        .with_context(|| format!("{}: no cases", dest_path.display()))?;
    for c in src["cases"].as_array().into_iter().flatten() {
        let Some(id) = c["case"].as_str() else {
            continue;
        };
        let mut c = c.clone();
        c["machine"] = Value::from(tag);
        match cases.iter().position(|d| d["case"].as_str() == Some(id)) {
            Some(_) if !replace => {
                done.kept += 1;
                continue;
            }
            Some(i) => {
                cases[i] = c;
                done.replaced += 1;
            }
            None => {
                cases.push(c);
                done.added += 1;
            }
        }
        if let Some(dir) = index.get(id) {
            let rel = dir.strip_prefix(run_criterion).expect("indexed under it");
            let to = baseline.join("criterion").join(rel);
            std::fs::create_dir_all(&to)?;
            for f in CASE_FILES {
                if dir.join(f).is_file() {
                    std::fs::copy(dir.join(f), to.join(f))?;
                }
            }
        }
    }
    cases.sort_by(|a, b| a["case"].as_str().cmp(&b["case"].as_str()));
    dest[format!("ceilings_machine_{tag}")] = src["ceilings"].clone();
    json::write(&dest_path, &dest)?;
    let meta_path = baseline.join("metadata.json");
    let mut meta = read(&meta_path).unwrap_or_else(|_| serde_json::json!({}));
    let entry = serde_json::json!({
        "machine": tag,
        "from": summary.display().to_string(),
        "device_name": src["device_name"],
        "git_commit": env!("MISTRAL_RS_BENCH_GIT_COMMIT"),
        "merged_at": now_rfc3339(),
        "result": &done,
    });
    match meta["merged"].as_array_mut() {
        Some(a) => a.push(entry),
        None => meta["merged"] = Value::Array(vec![entry]),
    }
    json::write(&meta_path, &meta)?;
    Ok(done)
}
