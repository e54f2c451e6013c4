//! `models.toml`: the shipped presets, and errors that name the file, preset and field.

use mistral_rs_bench::config::{ModelSource, Models};
use std::path::Path;

const GOOD: &str = r#"
[presets.a]
hidden = 64
intermediate = 128
heads = 4
kv_heads = 2
head_dim = 16
layers = 2
vocab = 100
rope_theta = 10000.0
max_context = 256
dtype = "bf16"
"#;

fn err(text: &str) -> String {
    format!(
        "{:#}",
        Models::parse(text, Path::new("some/models.toml")).unwrap_err()
    )
}

#[test]
fn shipped_models_file_has_the_required_presets() {
    let m = Models::load_default().unwrap();
    for name in [
        "tiny",
        "smollm2-135m",
        "llama-3-8b",
        "mistral-7b",
        "qwen2.5-0.5b",
    ] {
        m.get(name).unwrap();
    }
    let s = m.get("smollm2-135m").unwrap();
    assert_eq!(
        (
            s.hidden,
            s.layers,
            s.heads,
            s.kv_heads,
            s.intermediate,
            s.vocab
        ),
        (576, 30, 9, 3, 1536, 49152)
    );
    assert_eq!(s.head_dim * s.heads, s.hidden);
    assert!(matches!(s.source, ModelSource::Gguf { .. }));
    // SmolLM2-135M has ~135 M parameters (tied embeddings).
    assert!(s.tie_embeddings);
    let n = s.n_params();
    assert!((130_000_000..140_000_000).contains(&n), "{n}");
    let l = m.get("llama-3-8b").unwrap();
    assert!(
        (7_900_000_000..8_100_000_000).contains(&l.n_params()),
        "{}",
        l.n_params()
    );
}

#[test]
fn good_file_parses_with_defaults() {
    let m = Models::parse(GOOD, Path::new("x.toml")).unwrap();
    let a = m.get("a").unwrap();
    assert_eq!(a.name, "a");
    assert_eq!(a.rms_eps, 1e-5);
    assert_eq!(a.source, ModelSource::Synthetic);
    assert_eq!(a.n_rep(), 2);
}

#[test]
fn missing_field_names_file_preset_and_field() {
    let e = err(&GOOD.replace("heads = 4\n", ""));
    assert!(
        e.contains("some/models.toml") && e.contains("preset `a`") && e.contains("heads"),
        "{e}"
    );
}

#[test]
fn unknown_field_is_rejected() {
    let e = err(&GOOD.replace("layers = 2", "layers = 2\nlayrs = 3"));
    assert!(e.contains("preset `a`") && e.contains("layrs"), "{e}");
}

#[test]
fn wrong_type_is_rejected() {
    let e = err(&GOOD.replace("hidden = 64", "hidden = \"big\""));
    assert!(
        e.contains("preset `a`") && e.contains("some/models.toml"),
        "{e}"
    );
}

#[test]
fn inconsistent_shapes_name_the_field() {
    let e = err(&GOOD.replace("kv_heads = 2", "kv_heads = 3"));
    assert!(e.contains("field `kv_heads`"), "{e}");
    let e = err(&GOOD.replace("dtype = \"bf16\"", "dtype = \"f8\""));
    assert!(e.contains("field `dtype`") && e.contains("f8"), "{e}");
    let e = err(&GOOD.replace("layers = 2", "layers = 0"));
    assert!(e.contains("field `layers`"), "{e}");
    let e = err(&GOOD.replace("head_dim = 16", "head_dim = 15"));
    assert!(e.contains("field `head_dim`"), "{e}");
}

#[test]
fn bad_toml_and_bad_layout_are_errors() {
    assert!(err("[presets.a\nhidden=1").contains("not valid TOML"));
    assert!(err("[models.a]\nhidden = 1").contains("unknown top-level key `models`"));
    assert!(err("title = 1").contains("unknown top-level key"));
    let e = format!(
        "{:#}",
        Models::load(Path::new("/nonexistent/models.toml")).unwrap_err()
    );
    assert!(e.contains("/nonexistent/models.toml"), "{e}");
}

#[test]
fn selection_by_name() {
    let m = Models::load_default().unwrap();
    let sel = m.select("tiny, smollm2-135m").unwrap();
    assert_eq!(
        sel.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["tiny", "smollm2-135m"]
    );
    let e = format!("{:#}", m.select("tiny,nope").unwrap_err());
    assert!(
        e.contains("no preset `nope`") && e.contains("known:"),
        "{e}"
    );
    assert!(m.select(" , ").is_err());
}
