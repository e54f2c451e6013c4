//! The GPU analyses on input with known answers (no GPU needed): the fidelity check's paired
//! difference and its interval, and two cards side by side (`cards`).

#![recursion_limit = "256"]

use mistral_rs_bench::analysis::cards::{self, Term};
use mistral_rs_bench::analysis::fidelity::FidelityRow;
use mistral_rs_bench::results::Summary;
use serde_json::{json, Value};

/// Samples around `centre` with a deterministic ±`spread` wobble.
fn wobble(centre: f64, spread: f64, n: usize, phase: usize) -> Vec<f64> {
    (0..n)
        .map(|i| centre * (1.0 + spread * (((i * 7 + phase * 3) % 11) as f64 / 5.0 - 1.0)))
        .collect()
}

#[test]
fn fidelity_row_reads_the_paired_difference_and_its_interval() {
    let events = wobble(10_000.0, 0.03, 41, 0);
    // the suite's clock 5 % above the events', pair by pair, plus its own small noise
    let suite: Vec<f64> = events
        .iter()
        .zip(wobble(1.0, 0.002, 41, 1))
        .map(|(e, w)| e * 1.05 * w)
        .collect();
    let r = FidelityRow::from_pairs("x".into(), 100, &suite, &events).unwrap();
    assert!((r.diff_pct - 5.0).abs() < 0.3, "{r:?}");
    assert!(
        r.diff_lo_pct <= r.diff_pct && r.diff_pct <= r.diff_hi_pct,
        "{r:?}"
    );
    assert!(
        r.diff_lo_pct > 2.0,
        "a clear 5 % bias has an interval clear of ±2 %: {r:?}"
    );
    assert!(!r.within_tolerance, "{r:?}");
    assert!(r.events_cv_pct > 1.0 && r.events_cv_pct < 3.0, "{r:?}");
    assert_eq!(r.samples, 41);

    // the same clock on both sides: no difference, within tolerance
    let same = FidelityRow::from_pairs("x".into(), 100, &events, &events).unwrap();
    assert_eq!(same.diff_pct, 0.0);
    assert!(same.within_tolerance);
}

#[test]
fn fidelity_pairs_cancel_a_drift_that_unpaired_medians_would_not() {
    // both clocks drift upward over the run by 20 %, and the events sample comes second in
    // each pair, so it sits later on the drift: the pairs' ratio still reads the 1 % bias
    let n = 40;
    let events: Vec<f64> = (0..n)
        .map(|i| 1000.0 * (1.0 + 0.2 * i as f64 / n as f64))
        .collect();
    let suite: Vec<f64> = events.iter().map(|e| e * 1.01).collect();
    let r = FidelityRow::from_pairs("drift".into(), 10, &suite, &events).unwrap();
    assert!((r.diff_pct - 1.0).abs() < 1e-9, "{r:?}");
    assert!(r.within_tolerance);
}

#[test]
fn fidelity_refuses_unpaired_samples() {
    let err = FidelityRow::from_pairs("x".into(), 1, &[1.0, 2.0], &[1.0]).unwrap_err();
    assert!(err.to_string().contains("2 suite and 1 events"), "{err}");
    assert!(FidelityRow::from_pairs("x".into(), 1, &[], &[]).is_err());
}

/// A measured case: `ns` median, `bw_pct` / `fl_pct` its shares of the card's ceilings.
fn case(id: &str, ns: f64, bw_pct: f64, fl_pct: f64, cached: bool) -> Value {
    json!({
        "case": id, "group": id.split('/').next().unwrap(), "preset": "llama-3-8b",
        "device": "cuda0", "device_name": "card", "dtype": "bf16", "shape": "", "status": "ok",
        "reason": null, "flops": 1000, "bytes": 1000,
        "estimates": {"median_ns": ns, "median_lo_ns": ns, "median_hi_ns": ns, "mad_ns": 0.0,
                      "mean_ns": ns, "std_dev_ns": 0.0},
        "gbps": null, "gflops": null, "pct_bw_ceiling": bw_pct, "pct_flop_ceiling": fl_pct,
        "fits_in_cache": cached, "extra": null
    })
}

/// An end-to-end case with a GPU in-situ breakdown: `busy` and `idle` ms per token.
fn e2e(id: &str, ns: f64, busy: f64, idle: f64, ffn: f64) -> Value {
    let units = 128u64;
    let part = |name: &str, ms: f64| {
        json!({"part": name, "wall_s": ms, "wall_share": 0.5, "per_unit_ms": ms,
               "cpu_s": 0.0, "cpu_share": 0.0})
    };
    json!({
        "case": id, "group": "generation", "preset": "llama-3-8b", "device": "cuda0",
        "device_name": "card", "dtype": "bf16", "shape": "", "status": "ok", "reason": null,
        "flops": 0, "bytes": 0, "tokens": units,
        "estimates": {"median_ns": ns, "median_lo_ns": ns, "median_hi_ns": ns, "mad_ns": 0.0,
                      "mean_ns": ns, "std_dev_ns": 0.0},
        "gbps": null, "gflops": null, "pct_bw_ceiling": null, "pct_flop_ceiling": null,
        "extra": null,
        "insitu": {"engine": "mistralrs-core 0.8.1", "rules": "r", "hz": 500.0, "ticks": 10,
            "threads": 2, "unit": "token", "units": units, "sampled_s": 1.0, "timed_s": 1.0,
            "coverage": 1.0, "per_unit_ms": busy + idle,
            "parts": [part("ffn_gate_up", ffn), part("device_idle", idle),
                      part("attention", busy - ffn)],
            "unassigned_wall": 0.0, "unassigned_cpu": 0.0, "dropped": 0, "late_ticks": 0,
            "gpu": {"kernels": 500, "copies": 30, "busy_s": busy * units as f64 / 1e3,
                    "idle_s": idle * units as f64 / 1e3, "idle_gaps": 500,
                    "longest_gap_us": 10.0, "idle_host": [], "idle_ticks": 0,
                    "top_kernels": [], "dropped": 0}}
    })
}

fn summary(name: &str, copy_gbps: f64, gflops: f64, cases: Vec<Value>) -> Summary {
    serde_json::from_value(json!({
        "device": "cuda0", "device_name": name, "profile": null, "mistralrs_version": "0.8.1",
        "written_at": "",
        "ceilings": {"device": "cuda0", "device_name": name, "copy_gbps": copy_gbps,
                     "copy_bytes": 1, "matmul_gflops": gflops, "matmul_dtype": "bf16",
                     "matmul_n": 8192, "measured_at": ""},
        "cases": cases
    }))
    .unwrap()
}

#[test]
fn cards_predict_each_ratio_from_the_binding_ceiling() {
    // B has 1.4x A's bandwidth and 1.1x its matmul rate
    let a = summary(
        "A",
        3000.0,
        600_000.0,
        vec![
            case("ffn/big/decode", 140.0, 60.0, 1.0, false), // memory-bound: 0.8·1.4 + 0.2
            case("ffn/big/prefill", 110.0, 5.0, 90.0, false), // compute-bound: 0.9·1.1 + 0.1
            case("small_ops/rmsnorm/t1", 10.0, 1.0, 0.1, false), // launch-bound: ~1
            case("small_ops/tiny/cached", 10.0, 90.0, 0.1, true), // fits the cache
            case("quant_matmul/odd", 200.0, 80.0, 1.0, false), // far off its prediction
            case("only/on/a", 1.0, 1.0, 1.0, false),
            e2e("generation/m/decode/tg128/depth0", 9.0e6, 6.0, 3.0, 3.0),
        ],
    );
    let b = summary(
        "B",
        4200.0,
        660_000.0,
        vec![
            case("ffn/big/decode", 112.0, 80.0, 1.0, false),
            case("ffn/big/prefill", 100.0, 5.0, 90.0, false),
            case("small_ops/rmsnorm/t1", 10.0, 1.0, 0.1, false),
            case("small_ops/tiny/cached", 9.0, 120.0, 0.1, true),
            case("quant_matmul/odd", 100.0, 80.0, 1.0, false),
            e2e("generation/m/decode/tg128/depth0", 7.5e6, 4.5, 3.0, 2.0),
        ],
    );
    let c = cards::build(&[a], &[b]).unwrap();
    assert!((c.k_bandwidth - 1.4).abs() < 1e-9 && (c.k_flops - 1.1).abs() < 1e-9);
    let row = |id: &str| c.rows.iter().find(|r| r.case == id).unwrap();

    let d = row("ffn/big/decode");
    assert_eq!(d.term, Term::Bandwidth);
    assert!((d.predicted - (0.8 * 1.4 + 0.2)).abs() < 1e-9, "{d:?}");
    assert!((d.ratio - 1.25).abs() < 1e-9 && d.explained, "{d:?}");

    let p = row("ffn/big/prefill");
    assert_eq!(p.term, Term::Flops);
    assert!((p.predicted - 1.09).abs() < 1e-9 && p.explained, "{p:?}");

    let n = row("small_ops/rmsnorm/t1");
    assert_eq!(n.term, Term::FixedCost);
    assert!((n.predicted - 1.004).abs() < 1e-9 && n.explained, "{n:?}");

    let k = row("small_ops/tiny/cached");
    assert_eq!(
        k.term,
        Term::Cache,
        "a cache-resident case is not held to DRAM bandwidth"
    );
    assert!((k.predicted - 1.0).abs() < 1e-3, "{k:?}");

    let o = row("quant_matmul/odd");
    assert!(
        !o.explained,
        "a 2x ratio is not what a 1.32x prediction explains: {o:?}"
    );

    assert_eq!((c.only_a, c.only_b), (1, 0));

    // the end-to-end case: device busy 6.0 vs 4.5 ms, idle level at 3.0 ms
    assert_eq!(c.e2e.len(), 1);
    let e = &c.e2e[0];
    assert!((e.ratio - 1.2).abs() < 1e-9);
    assert_eq!(e.busy_ms.unwrap(), [6.0, 4.5]);
    assert_eq!(e.idle_ms.unwrap(), [3.0, 3.0]);
    assert_eq!(
        e.top_parts[0].0, "ffn_gate_up",
        "the part that moved most comes first"
    );

    let md = cards::markdown(&c);
    assert!(md.contains("copy bandwidth ×1.400"), "{md}");
    assert!(md.contains("| bandwidth | 2 | 1 |"), "{md}");
    assert!(md.contains("6.000 / 4.500"), "{md}");
}

#[test]
fn cards_need_ceilings_and_shared_cases() {
    let mut a = summary("A", 3000.0, 1.0, vec![case("x/y", 1.0, 1.0, 1.0, false)]);
    let b = summary("B", 3000.0, 1.0, vec![case("z/w", 1.0, 1.0, 1.0, false)]);
    let err = cards::build(std::slice::from_ref(&a), std::slice::from_ref(&b))
        .unwrap_err()
        .to_string();
    assert!(err.contains("share no measured case"), "{err}");
    a.ceilings = None;
    let err = cards::build(&[a], &[b]).unwrap_err().to_string();
    assert!(err.contains("ceilings"), "{err}");
}

/// `s` measured by a build of suite commit `commit`.
fn built(mut s: Summary, commit: &str) -> Summary {
    s.build = Some(
        serde_json::from_value(json!({"rustflags": "", "target_features": [],
            "cargo_features": ["cuda"], "profile": "release", "git_commit": commit}))
        .unwrap(),
    );
    s
}

#[test]
fn cards_take_several_runs_of_a_card_and_say_when_their_commits_differ() {
    // card A in two runs: the first holds x/1 but no ceilings, the second x/1 again (ignored:
    // the first run that holds a case gives it), x/2 and the ceilings
    let mut first = summary("A", 1.0, 1.0, vec![case("x/1", 140.0, 60.0, 1.0, false)]);
    first.ceilings = None;
    let second = summary(
        "A",
        3000.0,
        600_000.0,
        vec![
            case("x/1", 999.0, 60.0, 1.0, false),
            case("x/2", 10.0, 1.0, 1.0, false),
        ],
    );
    let b = summary(
        "B",
        4200.0,
        660_000.0,
        vec![
            case("x/1", 112.0, 80.0, 1.0, false),
            case("x/2", 10.0, 1.0, 1.0, false),
        ],
    );
    let a = [built(first, "aaa"), built(second, "bbb")];
    let c = cards::build(&a, &[built(b.clone(), "aaa")]).unwrap();
    assert!(
        (c.k_bandwidth - 1.4).abs() < 1e-9,
        "ceilings from the run that has them"
    );
    let x1 = c.rows.iter().find(|r| r.case == "x/1").unwrap();
    assert!(
        (x1.ratio - 1.25).abs() < 1e-9,
        "the first run's x/1: {x1:?}"
    );
    assert_eq!(c.rows.len(), 2);
    assert_eq!(c.a_commits, ["aaa", "bbb"]);
    let md = cards::markdown(&c);
    assert!(md.contains("different suite commits"), "{md}");

    // one commit on both sides: no such warning
    let same = cards::build(&[built(b.clone(), "aaa")], &[built(b, "aaa")]).unwrap();
    assert!(!cards::markdown(&same).contains("different suite commits"));
}
