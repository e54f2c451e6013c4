//! The pull-request verdict: A/A is quiet, a known slowdown is flagged for that case only,
//! bad inputs give exit 2 with the file named.

use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use std::path::Path;
use std::process::Command;

/// Writes a fake Criterion result set: `cases` of (id, per-iteration median ns), 20 samples
/// of 10 iterations each with log-normal noise of `sd` (CPU-like), scaled per case.
fn write_set(root: &Path, cases: &[(&str, f64)], sd: f64, seed: u64, scale: &dyn Fn(&str) -> f64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let noise = LogNormal::new(0.0, sd).unwrap();
    for (id, ns) in cases {
        let dir = root
            .join("criterion")
            .join(id.replace('/', "_"))
            .join("new");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("benchmark.json"),
            serde_json::json!({"group_id": id.split('/').next().unwrap(), "function_id": id, "full_id": id, "directory_name": id, "title": id}).to_string(),
        )
        .unwrap();
        let iters: Vec<f64> = (1..=20).map(|i| (i * 10) as f64).collect();
        let times: Vec<f64> = iters
            .iter()
            .map(|i| {
                // an occasional outlier, as on a shared machine
                let spike = if rng.random_bool(0.05) { 1.3 } else { 1.0 };
                i * ns * scale(id) * noise.sample(&mut rng) * spike
            })
            .collect();
        std::fs::write(
            dir.join("sample.json"),
            serde_json::json!({"sampling_mode": "Linear", "iters": iters, "times": times})
                .to_string(),
        )
        .unwrap();
    }
}

const CASES: &[(&str, f64)] = &[
    ("attention/p/decode/naive/ctx512", 1.5e6),
    ("ffn/p/float/f32/decode/t1", 2.6e5),
    ("kv_cache/p/grow512/len511", 160.0),
    ("quant_matmul/p/q4/Q4K/down/m1", 9.0e4),
    ("small_ops/p/rmsnorm/t1", 2.0e3),
    ("generation/m/decode/tg128/depth0", 2.7e9),
];

fn compare(a: &Path, b: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mistral-rs-bench"))
        .args(["compare", a.to_str().unwrap(), b.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn a_a_comparison_reports_no_regression() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    write_set(&a, CASES, 0.02, 1, &|_| 1.0);
    // the same set twice
    let (code, md, _) = compare(&a, &a);
    assert_eq!(code, 0, "{md}");
    assert!(
        md.contains("0 regression(s), 0 improvement(s), 6 within noise"),
        "{md}"
    );
    // two independent runs of the same code
    for seed in 2..12 {
        write_set(&b, CASES, 0.02, seed, &|_| 1.0);
        let (code, md, _) = compare(&a, &b);
        assert_eq!(code, 0, "seed {seed}: {md}");
    }
}

#[test]
fn a_five_percent_slowdown_is_flagged_for_that_case_only() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    for seed in 0..5u64 {
        write_set(&a, CASES, 0.02, 100 + seed, &|_| 1.0);
        write_set(&b, CASES, 0.02, 200 + seed, &|id| {
            if id.starts_with("ffn/") {
                1.05
            } else {
                1.0
            }
        });
        let (code, md, _) = compare(&a, &b);
        assert_eq!(code, 1, "{md}");
        let flagged: Vec<&str> = md.lines().filter(|l| l.contains("regression |")).collect();
        assert_eq!(flagged.len(), 1, "{md}");
        assert!(flagged[0].contains("ffn/p/float/f32/decode/t1"), "{md}");
        // grouped by pipeline part
        assert!(md.find("#### attention").unwrap() < md.find("#### ffn").unwrap());
        assert!(md.find("#### small_ops").unwrap() < md.find("#### generation").unwrap());
    }
    // and a speed-up is an improvement, not a failure
    write_set(&b, CASES, 0.02, 300, &|id| {
        if id.starts_with("small_ops/") {
            0.9
        } else {
            1.0
        }
    });
    let (code, md, _) = compare(&a, &b);
    assert_eq!(code, 0, "{md}");
    assert!(md.contains("1 improvement(s)"), "{md}");
}

#[test]
fn outputs_for_ci_services() {
    let t = tempfile::tempdir().unwrap();
    let (a, b, out) = (t.path().join("a"), t.path().join("b"), t.path().join("out"));
    write_set(&a, CASES, 0.02, 1, &|_| 1.0);
    write_set(&b, CASES, 0.02, 2, &|_| 1.0);
    let st = Command::new(env!("CARGO_BIN_EXE_mistral-rs-bench"))
        .args([
            "compare",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let gab: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("github-action-benchmark.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(gab.as_array().unwrap().len(), 6);
    assert_eq!(gab[0]["unit"], "ns");
    assert!(gab[0]["value"].as_f64().unwrap() > 0.0);
    let bmf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bencher.json")).unwrap()).unwrap();
    let l = &bmf["small_ops/p/rmsnorm/t1"]["latency"];
    assert!(l["lower_value"].as_f64().unwrap() <= l["upper_value"].as_f64().unwrap());
    assert!(std::fs::read_to_string(out.join("compare.md"))
        .unwrap()
        .contains("| case | old | new |"));
}

#[test]
fn missing_and_corrupt_baselines_exit_2_naming_the_file() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    write_set(&a, CASES, 0.02, 1, &|_| 1.0);
    let missing = t.path().join("does-not-exist");
    let (code, _, err) = compare(&missing, &a);
    assert_eq!(code, 2);
    assert!(err.contains("does-not-exist"), "{err}");
    let empty = t.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, _, err) = compare(&empty, &a);
    assert_eq!(code, 2);
    assert!(err.contains("no Criterion results"), "{err}");
    let bad = t.path().join("bad");
    write_set(&bad, CASES, 0.02, 1, &|_| 1.0);
    let f = bad
        .join("criterion")
        .join("small_ops_p_rmsnorm_t1")
        .join("new")
        .join("sample.json");
    std::fs::write(&f, "{ not json").unwrap();
    let (code, _, err) = compare(&bad, &a);
    assert_eq!(code, 2);
    assert!(
        err.contains("small_ops_p_rmsnorm_t1/new/sample.json"),
        "{err}"
    );
}
