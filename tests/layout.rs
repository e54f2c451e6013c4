//! The crate's layout, checked mechanically: every `crate::` path in `src/` points to the
//! same or a lower layer (so the folders cannot import each other in a circle), sibling files
//! of a folder do not import each other in a circle, only `src/main.rs` ends the process, and
//! the README's Layout section lists exactly the folders of `src/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may use modules of lower layers only (and its own).
const LAYERS: &[&[&str]] = &[
    &["util", "api"],
    &["config"],
    &["device"],
    &["case"],
    &["engine"],
    &["parts"],
    &["results"],
    &["run"],
    &["analysis", "report"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// The text of a file without its comments (a comment may name a module it does not use).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first path segments after each `prefix` (`crate::`, `super::`) in `code`, including
/// every name of a `prefix{a::b, c}` group.
fn targets(code: &str, prefix: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        // `crate::` inside another word (e.g. `mistral_rs_bench::`) is not ours
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        start = false;
                        let name = ident(&group[j..]);
                        if !name.is_empty() && name != "self" {
                            out.insert(name);
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// The top-level module a file of `src/` belongs to (`None` for lib.rs and main.rs).
fn top_module(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).unwrap();
    let mut comps = rel.components();
    let first = comps.next()?.as_os_str().to_string_lossy().to_string();
    if comps.next().is_some() {
        Some(first)
    } else {
        match first.trim_end_matches(".rs") {
            "lib" | "main" => None,
            other => Some(other.to_string()),
        }
    }
}

#[test]
fn every_module_has_a_layer() {
    for entry in std::fs::read_dir(src()).unwrap() {
        let p = entry.unwrap().path();
        if let Some(m) = top_module(&p.join("x.rs")).filter(|_| p.is_dir()) {
            assert!(layer_of(&m).is_some(), "src/{m}/ is in no layer of LAYERS");
        } else if p.is_file() {
            assert!(
                top_module(&p).is_none(),
                "{}: top-level files other than lib.rs and main.rs belong in a layer folder",
                p.display()
            );
        }
    }
}

#[test]
fn modules_use_only_lower_layers() {
    let mut bad = Vec::new();
    for f in rust_files(&src()) {
        let Some(m) = top_module(&f) else { continue };
        let own = layer_of(&m).unwrap();
        for t in targets(&code(&f), "crate::") {
            if t == m || t == "MISTRALRS_VERSION" {
                continue;
            }
            match layer_of(&t) {
                Some(l) if l < own => {}
                _ => bad.push(format!("{} uses crate::{t}", f.display())),
            }
        }
    }
    assert!(bad.is_empty(), "layering violated:\n{}", bad.join("\n"));
}

#[test]
fn sibling_files_import_no_cycle() {
    // Within each folder: edges between sibling files (not mod.rs, the folder's facade).
    let mut by_dir: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for f in rust_files(&src()) {
        by_dir
            .entry(f.parent().unwrap().to_path_buf())
            .or_default()
            .push(f);
    }
    for (dir, files) in by_dir {
        let names: BTreeSet<String> = files
            .iter()
            .map(|f| f.file_stem().unwrap().to_string_lossy().to_string())
            .filter(|n| n != "mod")
            .collect();
        let folder = dir.file_name().unwrap().to_string_lossy().to_string();
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in &files {
            let me = f.file_stem().unwrap().to_string_lossy().to_string();
            if me == "mod" {
                continue;
            }
            let text = code(f);
            let mut used = targets(&text, "super::");
            // `crate::<folder>::<file>` names a sibling too
            let own = format!("crate::{folder}::");
            used.extend(targets(&text.replace(&own, "super::"), "super::"));
            let e: BTreeSet<String> = used
                .into_iter()
                .filter(|u| names.contains(u) && *u != me)
                .collect();
            edges.insert(me, e);
        }
        // depth-first search for a back edge
        fn visit(
            n: &str,
            edges: &BTreeMap<String, BTreeSet<String>>,
            state: &mut BTreeMap<String, u8>,
            path: &mut Vec<String>,
        ) -> Option<Vec<String>> {
            match state.get(n) {
                Some(1) => {
                    let mut cycle = path.clone();
                    cycle.push(n.to_string());
                    return Some(cycle);
                }
                Some(2) => return None,
                _ => {}
            }
            state.insert(n.to_string(), 1);
            path.push(n.to_string());
            for m in edges.get(n).into_iter().flatten() {
                if let Some(c) = visit(m, edges, state, path) {
                    return Some(c);
                }
            }
            path.pop();
            state.insert(n.to_string(), 2);
            None
        }
        let mut state = BTreeMap::new();
        for n in edges.keys() {
            if let Some(c) = visit(n, &edges, &mut state, &mut Vec::new()) {
                panic!("import cycle in {}: {}", dir.display(), c.join(" -> "));
            }
        }
    }
}

#[test]
fn the_checker_sees_every_form_of_path() {
    let t = targets(
        "use crate::{device, util::{json, paths}};\nlet x = crate::parts::REGISTRY; mistral_rs_bench::run::x;",
        "crate::",
    );
    assert_eq!(
        t,
        ["device", "parts", "util"]
            .map(String::from)
            .into_iter()
            .collect()
    );
}

#[test]
fn only_main_ends_the_process() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut bad = Vec::new();
    for dir in ["src", "benches"] {
        for f in rust_files(&root.join(dir)) {
            if f.ends_with("src/main.rs") {
                continue;
            }
            if code(&f).contains("process::exit") {
                bad.push(f.display().to_string());
            }
        }
    }
    assert!(bad.is_empty(), "process::exit outside src/main.rs: {bad:?}");
}

#[test]
fn readme_layout_lists_the_folders_of_src() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find("\n## Layout")
        .expect("README has a Layout section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut folders: BTreeSet<String> = std::fs::read_dir(src())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| format!("{}/", e.file_name().to_string_lossy()))
        .collect();
    for f in ["lib.rs", "main.rs"] {
        folders.insert(f.to_string());
    }
    for f in &folders {
        assert!(
            section.contains(&format!(" {f}")),
            "README's Layout section does not list src/{f}"
        );
    }
    // and names no folder that is gone
    for line in section.lines() {
        let t = line.trim_start_matches(['│', '├', '└', '─', ' ']);
        if let Some(name) = t.split_whitespace().next() {
            if name.ends_with('/')
                && line.contains("──")
                && !["src/", "benches/", "tests/"].contains(&name)
            {
                assert!(
                    folders.contains(name),
                    "README's Layout section lists {name}, which src/ does not have"
                );
            }
        }
    }
}
