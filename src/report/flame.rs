//! Differential flamegraphs: two collapsed-stack files (`profile.folded`, written beside
//! each profiled case's `flamegraph.svg`) become one SVG whose frames are coloured by how
//! their share of samples changed (red: grew in the candidate, blue: shrank).

use anyhow::{Context, Result};
use std::io::{BufReader, Cursor};
use std::path::Path;

/// Writes `out` (SVG) from `before` and `after` folded stacks.
pub fn diff(before: &Path, after: &Path, out: &Path, title: &str) -> Result<()> {
    let mut folded = Vec::new();
    inferno::differential::from_files(Default::default(), before, after, &mut folded)
        .with_context(|| format!("cannot diff {} and {}", before.display(), after.display()))?;
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.to_string();
    opts.subtitle = Some(format!("{} → {}", before.display(), after.display()));
    let f =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    inferno::flamegraph::from_reader(&mut opts, BufReader::new(Cursor::new(folded)), f)
        .map_err(|e| anyhow::anyhow!("cannot render {}: {e}", out.display()))?;
    Ok(())
}
