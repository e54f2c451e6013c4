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

#[test]
fn merging_a_second_run_adds_missing_cases_and_keeps_existing_ones() {
    let t = tempfile::tempdir().unwrap();
    let (base, run) = (t.path().join("base"), t.path().join("run"));
    write_set(&base, &CASES[..2], 0.02, 1, &|_| 1.0);
    write_set(&run, &CASES[1..4], 0.02, 2, &|_| 2.0);
    let case = |id: &str, ns: f64| serde_json::json!({"case": id, "median": ns});
    std::fs::write(
        base.join("summary-cpu.json"),
        serde_json::json!({"device": "cpu", "ceilings": {"copy_gbps": 1.0},
            "cases": [case(CASES[0].0, 1.0), {"case": CASES[1].0, "median": 1.0, "machine": "a"}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(base.join("metadata.json"), r#"{"machine": "x"}"#).unwrap();
    let summary = run.join("summary-cpu.json");
    std::fs::write(
        &summary,
        serde_json::json!({"device": "cpu", "ceilings": {"copy_gbps": 2.0},
            "cases": CASES[1..4].iter().map(|(id, _)| case(id, 2.0)).collect::<Vec<_>>()})
        .to_string(),
    )
    .unwrap();
    let merge = |replace: bool| {
        let mut args = vec![
            "merge-baseline".to_string(),
            base.display().to_string(),
            "--criterion".into(),
            run.join("criterion").display().to_string(),
            "--summary".into(),
            summary.display().to_string(),
            "--machine".into(),
            "b".into(),
        ];
        if replace {
            args.push("--replace".into());
        }
        let out = Command::new(env!("CARGO_BIN_EXE_mistral-rs-bench"))
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // a baseline of one run says nothing of machines in the verdict
    let (_, _, err) = compare(&base, &run);
    assert!(!err.contains("several machines"), "{err}");
    assert!(merge(false).contains("2 added, 0 replaced, 1 kept"));
    // every verdict that uses the merged baseline says so, once, with the merged run's tag,
    // whether given the baseline's folder or its criterion/
    let (_, _, err) = compare(&base, &run);
    assert_eq!(
        err.matches("merges the runs of several machines").count(),
        1,
        "{err}"
    );
    assert!(err.contains("1 merged one (b)"), "{err}");
    let (_, _, err) = compare(&run, &base.join("criterion"));
    assert!(err.contains("merges the runs of several machines"), "{err}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("summary-cpu.json")).unwrap())
            .unwrap();
    let cases = s["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    let get = |id: &str| cases.iter().find(|c| c["case"] == id).unwrap().clone();
    // the existing case is untouched (its own machine tag kept), new ones are tagged
    assert_eq!(get(CASES[1].0)["median"], 1.0);
    assert_eq!(get(CASES[1].0)["machine"], "a");
    assert_eq!(get(CASES[3].0)["machine"], "b");
    assert_eq!(s["ceilings_machine_b"]["copy_gbps"], 2.0);
    // Criterion samples of the added cases came along; the kept case's did not change
    let sample = |root: &Path, id: &str| {
        std::fs::read_to_string(
            root.join("criterion")
                .join(id.replace('/', "_"))
                .join("new/sample.json"),
        )
        .unwrap()
    };
    assert_eq!(sample(&base, CASES[3].0), sample(&run, CASES[3].0));
    assert_ne!(sample(&base, CASES[1].0), sample(&run, CASES[1].0));
    let meta = std::fs::read_to_string(base.join("metadata.json")).unwrap();
    assert!(
        meta.contains("\"merged\"") && meta.contains("\"machine\": \"x\""),
        "{meta}"
    );
    // --replace takes the new run's copy
    assert!(merge(true).contains("0 added, 3 replaced, 0 kept"));
    assert_eq!(sample(&base, CASES[1].0), sample(&run, CASES[1].0));
}

#[test]
fn rounds_that_differ_as_processes_do_are_not_called_a_regression() {
    // Each round is a process: its whole level shifts (code layout, clock, neighbours) by a
    // few %, beyond the sample noise inside it. Three rounds a side, alternated.
    let t = tempfile::tempdir().unwrap();
    let mut level = StdRng::seed_from_u64(7);
    let shift = LogNormal::new(0.0, 0.03).unwrap();
    let mut flagged_aa = 0;
    for trial in 0..8u64 {
        let (a, b) = (
            t.path().join(format!("a{trial}")),
            t.path().join(format!("b{trial}")),
        );
        for r in 0..3u64 {
            let (la, lb) = (shift.sample(&mut level), shift.sample(&mut level));
            write_set(
                &a.join(format!("round-{r}")),
                CASES,
                0.01,
                10 * trial + r,
                &|_| la,
            );
            write_set(
                &b.join(format!("round-{r}")),
                CASES,
                0.01,
                500 + 10 * trial + r,
                &|_| lb,
            );
        }
        let (code, md, _) = compare(&a, &b);
        flagged_aa += md.lines().filter(|l| l.contains("regression |")).count();
        assert!(code == 0 || code == 1, "{md}");
        // a 15 % slowdown of one case in every round of B is still caught
        let c = t.path().join(format!("c{trial}"));
        for r in 0..3u64 {
            let lc = shift.sample(&mut level);
            write_set(
                &c.join(format!("round-{r}")),
                CASES,
                0.01,
                900 + 10 * trial + r,
                &|id| {
                    if id.starts_with("ffn/") {
                        1.15 * lc
                    } else {
                        lc
                    }
                },
            );
        }
        let (_, md, _) = compare(&a, &c);
        let flagged: Vec<&str> = md.lines().filter(|l| l.contains("regression |")).collect();
        assert!(
            flagged
                .iter()
                .any(|l| l.contains("ffn/p/float/f32/decode/t1")),
            "trial {trial}: 15 % slowdown missed\n{md}"
        );
    }
    // Pooling the rounds' samples ignores those level shifts (3 % against 1 % sample
    // noise) and flags many of these 48 A/A comparisons. Resampling rounds keeps false alarms near one in ten;
    // with only three rounds a side the bootstrap still underestimates the between-round
    // spread, which is why more rounds (ROUNDS=5) are the remedy for a noisy machine.
    assert!(
        flagged_aa <= 6,
        "{flagged_aa} false regressions in 48 A/A comparisons"
    );
}

#[test]
fn every_committed_baseline_compares_with_itself_as_noise() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target-baselines");
    let mut n = 0;
    for e in std::fs::read_dir(&root).unwrap() {
        let dir = e.unwrap().path();
        if !dir.join("criterion").is_dir() {
            continue;
        }
        let (code, md, err) = compare(&dir, &dir);
        assert_eq!(code, 0, "{}: {md}\n{err}", dir.display());
        assert!(
            md.contains("0 regression(s), 0 improvement(s)"),
            "{}: {md}",
            dir.display()
        );
        // grouped by pipeline part: every group heading is a part of the registry
        for line in md.lines().filter(|l| l.starts_with("#### ")) {
            let g = &line[5..];
            assert!(
                g.parse::<mistral_rs_bench::case::Group>().is_ok(),
                "{}: heading {line}",
                dir.display()
            );
        }
        n += 1;
    }
    assert!(n >= 3, "only {n} baselines found");
}

#[test]
fn builds_with_other_target_features_are_not_compared_unless_asked() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    write_set(&a, CASES, 0.02, 1, &|_| 1.0);
    write_set(&b, CASES, 0.02, 2, &|_| 1.0);
    let build = |flags: &str, features: &[&str]| {
        serde_json::json!({
            "rustflags": flags, "target_features": features, "cargo_features": [],
            "profile": "release", "git_commit": "x",
        })
        .to_string()
    };
    let file = mistral_rs_bench::results::criterion::BUILD_FILE;
    std::fs::write(a.join(file), build("", &["sse2"])).unwrap();
    std::fs::write(
        b.join(file),
        build("-C target-cpu=native", &["avx2", "fma", "sse2"]),
    )
    .unwrap();
    let (code, _, err) = compare(&a, &b);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("built differently") && err.contains("avx2, fma"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_mistral-rs-bench"))
        .args(["compare", a.to_str().unwrap(), b.to_str().unwrap()])
        .arg("--allow-build-mismatch")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("The builds differ"));
    // the same build on both sides (another commit) compares as usual
    std::fs::write(b.join(file), build("", &["sse2"])).unwrap();
    let (code, md, err) = compare(&a, &b);
    assert_eq!(code, 0, "{md}{err}");
    assert!(
        err.contains("Baseline: rustflags \"\", 1 target features"),
        "{err}"
    );
}

/// A summary file holding one end-to-end case whose in-situ breakdown gives `ffn_ms` per token
/// to the FFN's gate/up projection and 1 ms to attention (`root/summary-cpu.json`).
fn summary_with_breakdown(root: &Path, id: &str, ffn_ms: f64) {
    summary_file_with_breakdown(&root.join("summary-cpu.json"), "cpu", id, ffn_ms)
}

/// The same at `path`, run on `device`.
fn summary_file_with_breakdown(path: &Path, device: &str, id: &str, ffn_ms: f64) {
    let part = |name: &str, ms: f64| {
        serde_json::json!({"part": name, "wall_s": ms, "wall_share": 0.5, "per_unit_ms": ms,
            "per_unit_range_ms": [ms * 0.98, ms * 1.02], "cpu_s": ms, "cpu_share": 0.5})
    };
    let case = serde_json::json!({
        "case": id, "group": "generation", "preset": "tiny", "device": device, "device_name": "t",
        "dtype": "f32", "shape": "", "status": "ok", "reason": null, "flops": 0, "bytes": 0,
        "tokens": 127, "estimates": null, "gbps": null, "gflops": null, "pct_bw_ceiling": null,
        "pct_flop_ceiling": null, "extra": null,
        "insitu": {"engine": "mistralrs-core 0.8.1", "rules": "mistralrs-core 0.8.1", "hz": 100.0,
            "ticks": 100, "threads": 4, "unit": "token", "units": 127, "sampled_s": 1.0,
            "timed_s": 1.0, "coverage": 1.0, "per_unit_ms": ffn_ms + 1.0,
            "parts": [part("ffn_gate_up", ffn_ms), part("attention", 1.0)],
            "unassigned_wall": 0.0, "unassigned_cpu": 0.0, "dropped": 0, "late_ticks": 0}
    });
    let s = serde_json::json!({"device": device, "device_name": "t", "profile": null,
        "mistralrs_version": "0.8.1", "written_at": "", "ceilings": null, "cases": [case]});
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, s.to_string()).unwrap();
}

#[test]
fn a_gpu_sides_round_folders_are_split_by_part_on_a_host_without_that_device() {
    // scripts/gpu-upstream.sh's layout: SIDE/r1/criterion and SIDE/r1/out/summary-cuda0.json,
    // compared back on a CPU-only host
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("A"), tmp.path().join("B"));
    let id = "generation/llama-3-8b-synthetic-bf16/decode/tg128/depth0";
    let cases = [(id, 8.0e6)];
    write_set(&a.join("r1"), &cases, 0.01, 1, &|_| 1.0);
    write_set(&b.join("r1"), &cases, 0.01, 2, &|_| 0.7);
    summary_file_with_breakdown(&a.join("r1/out/summary-cuda0.json"), "cuda:0", id, 5.0);
    summary_file_with_breakdown(&b.join("r1/out/summary-cuda0.json"), "cuda:0", id, 2.0);
    let (code, out, err) = compare(&a, &b);
    assert_eq!(code, 0, "an improvement passes: {out}\n{err}");
    assert!(out.contains("split by part (in situ)"), "{out}");
    let ffn = out
        .lines()
        .find(|l| l.contains("| ffn_gate_up |"))
        .expect(&out);
    assert!(ffn.contains("-3.000"), "{ffn}");
}

#[test]
fn a_moved_end_to_end_case_is_split_by_part_from_both_sides_breakdowns() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let id = "generation/tiny-synthetic-f32/decode/tg128/depth0";
    let cases = [(id, 2.0e6)];
    write_set(&a, &cases, 0.01, 1, &|_| 1.0);
    write_set(&b, &cases, 0.01, 2, &|_| 1.2);
    summary_with_breakdown(&a, id, 1.0);
    summary_with_breakdown(&b, id, 1.4);
    let (code, out, err) = compare(&a, &b);
    assert_eq!(code, 1, "a 20 % slowdown is a regression: {out}\n{err}");
    assert!(out.contains("split by part (in situ)"), "{out}");
    // the FFN's row carries the whole change; attention did not move
    let ffn = out
        .lines()
        .find(|l| l.contains("| ffn_gate_up |"))
        .expect(&out);
    assert!(ffn.contains("+0.400"), "{ffn}");
    let attn = out
        .lines()
        .find(|l| l.contains("| attention |"))
        .expect(&out);
    assert!(attn.contains("+0.000"), "{attn}");
}
