//! JSON files: one reader and one writer, so every error names the file and what it was
//! expected to hold.

use anyhow::{Context, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;

/// Reads `path` as a `T`; `what` names the expected content in the error
/// ("a summary file", "Criterion estimates", ...).
pub fn read<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not {what}", path.display()))
}

/// Writes `value` to `path`, pretty-printed (the folder must exist).
pub fn write<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `value` to `path` on one line (large dumps: in-situ traces), making its folder.
pub fn write_compact<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let f =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    serde_json::to_writer(std::io::BufWriter::new(f), value)
        .with_context(|| format!("cannot write {}", path.display()))
}
