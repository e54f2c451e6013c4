//! The instruction-count signal: reading callgrind's output, the verdict rule, the build
//! check. (The counting itself needs valgrind and an x86-64-v3 build; the test build is
//! native, so it is run by `mistral-rs-bench icount`, see docs/verdict-sensitivity.md.)

use mistral_rs_bench::analysis::compare::Verdict;
use mistral_rs_bench::analysis::icount::{change_pct, judge, moved_functions, pr_verdict, Row};
use mistral_rs_bench::run::icount::{check_build, parse_annotate, total_ir, Count};
use mistral_rs_bench::util::build::BuildInfo;

fn count(ir: u64, iters: u64) -> Count {
    Count {
        case: "ffn/tiny/float/f32/decode/t1".into(),
        ir,
        iters,
        extra_iters: 0,
        ir_per_iter: ir as f64 / iters as f64,
        wall_s: 1.0,
        callgrind_file: "x".into(),
    }
}

#[test]
fn total_prefers_summary_then_totals() {
    assert_eq!(
        total_ir("events: Ir\nfn=a\n1 5\ntotals: 77\nsummary: 1708974\n"),
        Some(1708974)
    );
    assert_eq!(total_ir("events: Ir\ntotals: 42\n"), Some(42));
    assert_eq!(total_ir("events: Ir\nfn=a\n1 5\n"), None);
}

#[test]
fn annotate_rows_parse_without_the_total() {
    let text = include_str!("fixtures/callgrind_annotate.txt");
    let rows = parse_annotate(text, usize::MAX);
    assert!(rows.len() >= 8, "{rows:?}");
    assert_eq!(rows[0].0, 580_200);
    assert!(rows[0].1.contains("rotary_emb.rs:"));
    assert!(rows.iter().all(|(_, n)| !n.contains("PROGRAM TOTALS")));
    assert!(rows
        .iter()
        .any(|(v, n)| *v == 114_098 && n.contains("_int_free")));
    // Sorted as callgrind_annotate printed them, largest first.
    assert!(rows.windows(2).all(|w| w[0].0 >= w[1].0));
    assert_eq!(parse_annotate(text, 3).len(), 3);
}

#[test]
fn verdict_at_one_percent() {
    assert_eq!(judge(1.01, 1.0), Verdict::Regression);
    assert_eq!(judge(0.99, 1.0), Verdict::Noise);
    assert_eq!(judge(0.0, 1.0), Verdict::Noise);
    assert_eq!(judge(-1.5, 1.0), Verdict::Improvement);
    // Per iteration: 3 % more instructions over the same iterations.
    let c = change_pct(&count(100_000, 100), &count(103_000, 100));
    assert!((c - 3.0).abs() < 1e-9, "{c}");
    let c = change_pct(&count(100_000, 100), &count(200_000, 200));
    assert!(c.abs() < 1e-9, "{c}");
}

fn row(case: &str, v: Option<Verdict>) -> Row {
    Row {
        case: case.into(),
        group: None,
        a: count(1, 1),
        b: None,
        change_pct: None,
        verdict: v,
        moved: vec![],
    }
}

#[test]
fn a_pr_fails_only_on_a_regression() {
    let v = pr_verdict(&[
        row("a", Some(Verdict::Noise)),
        row("b", Some(Verdict::Improvement)),
    ])
    .unwrap();
    assert!(v.pass);
    assert_eq!(v.improvements, vec!["b".to_string()]);
    let v = pr_verdict(&[
        row("a", Some(Verdict::Noise)),
        row("c", Some(Verdict::Regression)),
    ])
    .unwrap();
    assert!(!v.pass);
    assert_eq!(v.regressions, vec!["c".to_string()]);
    // One side only: a record, no verdict.
    assert!(pr_verdict(&[row("a", None)]).is_none());
}

#[test]
fn moved_functions_join_by_name_across_checkouts() {
    let a = vec![
        (1000, "/a/src/x.rs:foo::bar (100x) [/a/bench]".to_string()),
        (500, "/a/src/y.rs:same [/a/bench]".to_string()),
    ];
    let b = vec![
        (1300, "/b/src/x.rs:foo::bar (130x) [/b/bench]".to_string()),
        (500, "/b/src/y.rs:same [/b/bench]".to_string()),
        (40, "???:new_fn".to_string()),
    ];
    let d = moved_functions(&a, &b, 100, 100, 10);
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(d[0].function, "foo::bar");
    assert_eq!((d[0].a_ir_per_iter, d[0].b_ir_per_iter), (10.0, 13.0));
    assert_eq!(d[1].function, "new_fn");
    assert_eq!(moved_functions(&a, &b, 100, 100, 1).len(), 1);
}

fn build(features: &[&str], rustflags: &str) -> BuildInfo {
    BuildInfo {
        rustflags: rustflags.into(),
        target_features: features.iter().map(|s| s.to_string()).collect(),
        cargo_features: vec![],
        profile: "release".into(),
        git_commit: "x".into(),
        engine: "mistralrs-core 0.8.1 (crates.io)".into(),
    }
}

#[test]
fn avx512_builds_are_refused() {
    let native = build(&["avx", "avx2", "avx512f", "fma"], "-C target-cpu=native");
    let e = check_build("A", &native).unwrap_err().to_string();
    assert!(e.contains("avx512f") && e.contains("x86-64-v3"), "{e}");
    assert!(check_build(
        "A",
        &build(&["avx", "avx2", "fma"], "-C target-cpu=x86-64-v3")
    )
    .is_ok());
}
