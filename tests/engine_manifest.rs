//! scripts/engine-manifest.py, which points a copy of this crate at a local mistral.rs
//! checkout, on two made-up checkouts: a 0.9 one pinning candle by git revision (offline,
//! with a local candle), and a 0.8 one pinning candle from crates.io.

use std::path::Path;
use std::process::Command;

/// candle's git source, as a 0.9 checkout pins it.
const CANDLE_GIT: &str = "https://github.com/huggingface/candle.git";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A workspace at `version` with the three mistralrs crates this suite uses as members (and a
/// folder that is not a crate) and `candle` as its candle-core dependency, plus a Cargo.lock.
fn checkout(dir: &Path, version: &str, candle: &str) {
    write(
        &dir.join("Cargo.toml"),
        &format!(
            "[workspace]\nmembers = [\"mistralrs-core\", \"mistralrs-quant\", \"mistralrs-paged-attn\", \"docs\"]\n\
             [workspace.package]\nversion = \"{version}\"\n\
             [workspace.dependencies]\ncandle-core = {candle}\n"
        ),
    );
    for m in ["mistralrs-core", "mistralrs-quant", "mistralrs-paged-attn"] {
        write(
            &dir.join(m).join("Cargo.toml"),
            &format!("[package]\nname = \"{m}\"\nversion.workspace = true\n"),
        );
    }
    write(
        &dir.join("Cargo.lock"),
        "version = 4\n# the checkout's lock\n",
    );
}

/// Runs the script on a fresh copy of this crate's manifest in `out`.
fn script(ck: &Path, out: &Path, candle: Option<&Path>) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(out).unwrap();
    std::fs::copy(root.join("Cargo.toml"), out.join("Cargo.toml")).unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(root.join("scripts/engine-manifest.py"))
        .arg(ck)
        .arg(out.join("Cargo.toml"));
    if let Some(c) = candle {
        cmd.arg("--candle").arg(c);
    }
    cmd.output().unwrap()
}

/// The script's run that must succeed; returns (manifest, summary JSON).
fn run(ck: &Path, out: &Path, candle: Option<&Path>) -> (toml::Table, serde_json::Value) {
    let manifest = out.join("Cargo.toml");
    let o = script(ck, out, candle);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = serde_json::from_slice(&o.stdout).unwrap();
    let m = toml::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    (m, summary)
}

fn dep<'a>(m: &'a toml::Table, name: &str) -> &'a toml::Value {
    &m["dependencies"][name]
}

#[test]
fn a_0_9_checkout_with_git_candle_is_patched_in_offline() {
    let t = tempfile::tempdir().unwrap();
    let url = CANDLE_GIT;
    let (ck, candle) = git_candle_checkout(t.path());
    let (m, s) = run(&ck, &t.path().join("copy"), Some(&candle));
    assert_eq!(s["engine_version"], "0.9.2");
    assert_eq!(s["features"], serde_json::json!(["engine-0_9"]));
    // the pins follow the checkout, the mistralrs crates come from it by path
    assert_eq!(dep(&m, "mistralrs-core").as_str(), Some("=0.9.2"));
    assert_eq!(
        dep(&m, "mistralrs-paged-attn")["version"].as_str(),
        Some("=0.9.2")
    );
    let patch = m["patch"]["crates-io"].as_table().unwrap();
    let core_path = patch["mistralrs-core"]["path"].as_str().unwrap();
    assert!(
        core_path.ends_with("mistral.rs/mistralrs-core"),
        "{core_path}"
    );
    assert!(patch.contains_key("mistralrs-quant") && !patch.contains_key("docs"));
    // this crate's candle is the local one, and the engine's git source is patched to it
    let cc = dep(&m, "candle-core")["path"].as_str().unwrap();
    assert!(cc.ends_with("candle/candle-core"), "{cc}");
    assert_eq!(
        dep(&m, "candle-flash-attn")["optional"].as_bool(),
        Some(true)
    );
    let git = m["patch"][url].as_table().unwrap();
    assert!(git["candle-nn"]["path"]
        .as_str()
        .unwrap()
        .ends_with("candle/candle-nn"));
    // and the checkout's lock replaces this crate's
    let lock = std::fs::read_to_string(t.path().join("copy/Cargo.lock")).unwrap();
    assert!(lock.contains("the checkout's lock"));
}

#[test]
fn a_0_8_checkout_pins_its_crates_io_candle_and_keeps_the_0_8_api() {
    let t = tempfile::tempdir().unwrap();
    let ck = t.path().join("mistral.rs");
    checkout(&ck, "0.8.5", "{ version = \"0.10.2\" }");
    let (m, s) = run(&ck, &t.path().join("copy"), None);
    assert_eq!(s["features"], serde_json::json!([]));
    assert_eq!(s["candle"], "crates.io 0.10.2");
    assert_eq!(dep(&m, "mistralrs-core").as_str(), Some("=0.8.5"));
    assert_eq!(dep(&m, "candle-nn").as_str(), Some("=0.10.2"));
    assert!(m["patch"]
        .get("https://github.com/huggingface/candle.git")
        .is_none());
}

#[test]
fn the_api_form_is_guessed_from_the_version() {
    // 0.8.23 (4f6042b41, 486ade2d8) has 0.9's API but for the embedding; 0.9.0 and later the
    // quantizable embedding; a pre-release suffix does not change the guess
    for (version, features) in [
        ("0.8.22", serde_json::json!([])),
        ("0.8.23", serde_json::json!(["engine-0_8_23"])),
        ("0.8.30", serde_json::json!(["engine-0_8_23"])),
        ("0.9.0-alpha.1", serde_json::json!(["engine-0_9"])),
        ("1.0.0", serde_json::json!(["engine-0_9"])),
    ] {
        let t = tempfile::tempdir().unwrap();
        let ck = t.path().join("mistral.rs");
        checkout(&ck, version, "{ version = \"0.10.2\" }");
        let (_, s) = run(&ck, &t.path().join("copy"), None);
        assert_eq!(s["features"], features, "version {version}");
    }
}

/// A 0.9.2 checkout (crates.io candle) at `t/mistral.rs` that lacks the crate `missing`.
fn checkout_without(t: &Path, missing: &str) -> std::path::PathBuf {
    let ck = t.join("mistral.rs");
    checkout(&ck, "0.9.2", "{ version = \"0.10.2\" }");
    std::fs::remove_dir_all(ck.join(missing)).unwrap();
    ck
}

#[test]
fn a_checkout_without_a_crate_this_suite_pins_is_refused() {
    // mistralrs-paged-attn left at its crates.io pin would mix two engines in one build
    let t = tempfile::tempdir().unwrap();
    let ck = checkout_without(t.path(), "mistralrs-paged-attn");
    let o = script(&ck, t.path(), None);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no mistralrs-paged-attn"), "{err}");
}

#[test]
fn a_folder_that_is_not_a_mistral_rs_workspace_is_refused() {
    let t = tempfile::tempdir().unwrap();
    write(&t.path().join("ck/Cargo.toml"), "[package]\nname = \"x\"\n");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = t.path().join("Cargo.toml");
    let o = script(&t.path().join("ck"), t.path(), None);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a mistral.rs workspace"));
    // and the manifest was not touched
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        std::fs::read_to_string(root.join("Cargo.toml")).unwrap()
    );
}

/// scripts/build-engine.sh, the build step of bench-mistralrs.sh and bisect-mistralrs.sh.
fn build_engine(side: &Path, dest: &Path) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new("bash")
        .arg(root.join("scripts/build-engine.sh"))
        .arg(side)
        .arg(dest)
        .output()
        .unwrap()
}

#[test]
fn build_engine_skips_a_checkout_it_cannot_patch_in() {
    // git bisect's "skip" (125), before cargo runs: no binary is left behind
    let t = tempfile::tempdir().unwrap();
    let ck = checkout_without(t.path(), "mistralrs-quant");
    let dest = t.path().join("side");
    let o = build_engine(&ck, &dest);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(err.contains("no mistralrs-quant"), "{err}");
    assert!(!dest.join("bench").exists());
}

#[test]
fn build_engine_refuses_a_side_that_is_neither_release_nor_a_checkout() {
    let t = tempfile::tempdir().unwrap();
    let o = build_engine(&t.path().join("nowhere"), &t.path().join("side"));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("neither 'release' nor a mistral.rs checkout")
    );
    assert!(!t.path().join("side").exists());
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A 0.9 checkout pinning candle `35d7ae7` by git, and a candle tree at `candle`.
fn git_candle_checkout(t: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let ck = t.join("mistral.rs");
    checkout(
        &ck,
        "0.9.2",
        &format!("{{ git = \"{CANDLE_GIT}\", version = \"0.11.0\", rev = \"35d7ae7\" }}"),
    );
    let candle = t.join("src/candle");
    for c in ["candle-core", "candle-nn", "candle-transformers"] {
        write(&candle.join(c).join("Cargo.toml"), "[package]\n");
    }
    (ck, candle)
}

#[test]
fn a_candle_clone_at_another_revision_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let (ck, candle) = git_candle_checkout(t.path());
    git(&candle, &["init", "-q"]);
    git(&candle, &["add", "."]);
    git(&candle, &["commit", "-q", "-m", "not 35d7ae7"]);
    let o = script(&ck, &t.path().join("copy"), Some(&candle));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("the engine pins candle 35d7ae7"));
}

#[test]
fn an_extracted_candle_inside_another_repository_is_taken() {
    // bisect-mistralrs.sh extracts candle with `git archive` under this crate's target/: the
    // repository around it is not candle's
    let t = tempfile::tempdir().unwrap();
    let (ck, candle) = git_candle_checkout(t.path());
    git(t.path(), &["init", "-q"]);
    git(t.path(), &["add", "."]);
    git(t.path(), &["commit", "-q", "-m", "the suite's repository"]);
    let (m, _) = run(&ck, &t.path().join("copy"), Some(&candle));
    let cc = dep(&m, "candle-core")["path"].as_str().unwrap();
    assert!(cc.ends_with("src/candle/candle-core"), "{cc}");
}
