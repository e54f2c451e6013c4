//! Symbols for a trace recorded by a stripped binary (the packed builds carried to the GPU
//! machines): the sampler keeps an address it could not resolve as its frame's name
//! (`0x…`), and the trace records where the executable was mapped ([`ExeMap`]); here those
//! addresses are resolved offline against the unstripped binary of the same build (its line
//! tables and inlined frames, through `addr2line`), so the rules can split the trace.

use super::sampler::Frame;
use super::Trace;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Where this process's executable is mapped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExeMap {
    pub path: String,
    /// The address its file offset 0 is mapped at (a PIE's load bias).
    pub base: u64,
}

/// The executable's mapping, from `/proc/self/maps` (None where that cannot be read).
pub fn exe_map() -> Option<ExeMap> {
    let exe = std::env::current_exe().ok()?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|l| {
        // start-end perms offset dev inode path
        let mut f = l.split_whitespace();
        let range = f.next()?;
        let (_perms, offset, _dev, _inode) = (f.next()?, f.next()?, f.next()?, f.next()?);
        let path = f.next()?;
        if Path::new(path) != exe || u64::from_str_radix(offset, 16).ok()? != 0 {
            return None;
        }
        Some(ExeMap {
            path: path.to_string(),
            base: u64::from_str_radix(range.split('-').next()?, 16).ok()?,
        })
    })
}

/// An unresolved frame's address (`0x…` with no file).
fn unresolved(f: &Frame) -> Option<u64> {
    if f.file.is_some() {
        return None;
    }
    u64::from_str_radix(f.func.strip_prefix("0x")?, 16).ok()
}

/// A Rust symbol's hash suffix (`::h0123456789abcdef`), which the in-process symboliser
/// leaves out.
fn without_hash(name: &str) -> &str {
    match name.rfind("::h") {
        Some(i) if name.len() - i == 19 && name[i + 3..].bytes().all(|b| b.is_ascii_hexdigit()) => {
            &name[..i]
        }
        _ => name,
    }
}

/// Resolves the trace's unresolved executable frames against `binary` (the unstripped build
/// the stripped one came from). Returns how many distinct addresses were resolved.
pub fn resymbolize(trace: &mut Trace, binary: &Path) -> Result<usize> {
    let Some(map) = trace.exe.clone() else {
        bail!("the trace does not record where its executable was mapped (an older dump)");
    };
    let loader = addr2line::Loader::new(binary)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("reading the debug info of {}", binary.display()))?;
    let mut cache: HashMap<u64, Option<Vec<Frame>>> = HashMap::new();
    let mut resolved = 0usize;
    for stack in &mut trace.stacks {
        let mut out = Vec::with_capacity(stack.len());
        for f in stack.drain(..) {
            let Some(addr) = unresolved(&f).filter(|a| *a >= map.base) else {
                out.push(f);
                continue;
            };
            let frames = cache.entry(addr).or_insert_with(|| {
                let probe = addr - map.base;
                let mut v = vec![];
                if let Ok(mut it) = loader.find_frames(probe) {
                    while let Ok(Some(fr)) = it.next() {
                        let func = fr
                            .function
                            .as_ref()
                            .and_then(|n| n.demangle().ok())
                            .map(|n| without_hash(&n).to_string());
                        let Some(func) = func.or_else(|| {
                            loader.find_symbol(probe).map(|s| {
                                without_hash(&addr2line::demangle_auto(s.into(), None)).to_string()
                            })
                        }) else {
                            continue;
                        };
                        v.push(Frame {
                            func,
                            file: fr
                                .location
                                .as_ref()
                                .and_then(|l| l.file.map(str::to_string)),
                            line: fr.location.as_ref().and_then(|l| l.line),
                        });
                    }
                }
                if v.is_empty() {
                    None
                } else {
                    resolved += 1;
                    Some(v)
                }
            });
            match frames {
                Some(v) => out.extend(v.iter().cloned()),
                None => out.push(f),
            }
        }
        *stack = out;
    }
    Ok(resolved)
}
