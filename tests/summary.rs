//! Reading Criterion's output and the roofline arithmetic of the summary.

use mistral_rs_bench::case::Status;
use mistral_rs_bench::device::ceilings::Ceilings;
use mistral_rs_bench::results::criterion::{index as index_criterion, read_estimates};
use mistral_rs_bench::results::roofline::roofline;

fn estimate(p: f64) -> String {
    format!(
        r#"{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":{},"upper_bound":{}}},"point_estimate":{p},"standard_error":1.0}}"#,
        p * 0.9,
        p * 1.1
    )
}

#[test]
fn reads_criterion_estimates_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("attention").join("tiny_decode").join("new");
    std::fs::create_dir_all(&new).unwrap();
    std::fs::write(
        new.join("estimates.json"),
        format!(
            r#"{{"mean":{},"median":{},"median_abs_dev":{},"slope":null,"std_dev":{}}}"#,
            estimate(1000.0),
            estimate(950.0),
            estimate(20.0),
            estimate(40.0)
        ),
    )
    .unwrap();
    std::fs::write(
        new.join("benchmark.json"),
        r#"{"group_id":"attention","function_id":"tiny/decode","value_str":null,"throughput":null,"full_id":"attention/tiny/decode","directory_name":"attention/tiny_decode","title":"attention/tiny/decode"}"#,
    )
    .unwrap();
    // A saved baseline beside `new` must not be indexed as the current result.
    let base = dir
        .path()
        .join("attention")
        .join("tiny_decode")
        .join("base");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::copy(new.join("benchmark.json"), base.join("benchmark.json")).unwrap();
    let idx = index_criterion(dir.path());
    assert_eq!(idx.len(), 1);
    assert_eq!(idx["attention/tiny/decode"], new);
    let e = read_estimates(&new).unwrap();
    assert_eq!(e.median_ns, 950.0);
    assert_eq!(e.median_lo_ns, 855.0);
    assert_eq!(e.mad_ns, 20.0);
    assert_eq!(e.std_dev_ns, 40.0);
    // A corrupt file names itself.
    std::fs::write(new.join("estimates.json"), "{").unwrap();
    let err = format!("{:#}", read_estimates(&new).unwrap_err());
    assert!(err.contains("estimates.json"), "{err}");
}

#[test]
fn roofline_shares_of_ceilings() {
    let c = Ceilings {
        device: "cpu".into(),
        device_name: "test".into(),
        copy_gbps: 20.0,
        copy_bytes: 0,
        matmul_gflops: 100.0,
        matmul_dtype: "f32".into(),
        matmul_n: 1024,
        measured_at: String::new(),
    };
    // 1e9 bytes and 5e10 FLOPs in 0.1 s: 10 GB/s (50 %), 500 GFLOP/s (500 %: a bug to see).
    let r = roofline(50_000_000_000, 1_000_000_000, 1e8, Some(&c));
    let (gbps, gflops, pbw, pfl) = (r.gbps, r.gflops, r.pct_bw, r.pct_flop);
    assert!((gbps - 10.0).abs() < 1e-9);
    assert!((gflops - 500.0).abs() < 1e-9);
    assert!((pbw.unwrap() - 50.0).abs() < 1e-9);
    assert!((pfl.unwrap() - 500.0).abs() < 1e-9);
}

fn case(
    group: &str,
    id: &str,
    preset: &str,
    median_ns: f64,
    tokens: Option<u64>,
) -> mistral_rs_bench::results::CaseSummary {
    mistral_rs_bench::results::CaseSummary {
        case: format!("{group}/{id}"),
        case_id: None,
        group: group.into(),
        preset: preset.into(),
        device: "cpu".into(),
        device_name: "t".into(),
        dtype: "f32".into(),
        shape: String::new(),
        status: Status::Ok,
        reason: None,
        flops: 0,
        bytes: 0,
        tokens,
        estimates: Some(mistral_rs_bench::results::Estimates {
            median_ns,
            median_lo_ns: median_ns,
            median_hi_ns: median_ns,
            mad_ns: 0.0,
            mean_ns: median_ns,
            std_dev_ns: 0.0,
        }),
        tokens_per_s: None,
        gbps: None,
        gflops: None,
        pct_bw_ceiling: None,
        pct_flop_ceiling: None,
        fits_in_cache: None,
        measured_at: String::new(),
        extra: serde_json::Value::Null,
        stand_in: None,
        insitu: None,
    }
}

#[test]
fn context_slope_from_decode_depths_and_components() {
    // 127 tokens: 10 ms/token at depth 0, 12 ms/token at depth 2048 -> 1 ms per 1k tokens.
    let cases = vec![
        case(
            "generation",
            "m/decode/tg128/depth0",
            "p",
            127.0 * 10e6,
            Some(127),
        ),
        case(
            "generation",
            "m/decode/tg128/depth512",
            "p",
            127.0 * 10.5e6,
            Some(127),
        ),
        case(
            "generation",
            "m/decode/tg128/depth2048",
            "p",
            127.0 * 12e6,
            Some(127),
        ),
        // attention: 0.1 ms at 512, 0.4 ms at 2048 per layer -> 0.3 ms / 1536 tokens x 30 layers
        case("attention", "p/decode/naive/ctx512", "p", 0.1e6, None),
        case("attention", "p/decode/naive/ctx2048", "p", 0.4e6, None),
        case("attention", "p/prefill/naive/ctx512", "p", 9e6, None),
    ];
    let layers = [("p".to_string(), 30usize)].into_iter().collect();
    let d = mistral_rs_bench::results::derive::derive(&cases, &layers);
    let m = &d["context_slope"]["m"];
    assert!(
        (m["engine_slope_ms_per_1k_ctx"].as_f64().unwrap() - 1000.0 * 2.0 / 2048.0).abs() < 1e-9,
        "{m}"
    );
    assert!(
        (m["component_attention_slope_ms_per_1k_ctx"]
            .as_f64()
            .unwrap()
            - 0.3 / 1536.0 * 1000.0 * 30.0)
            .abs()
            < 1e-9,
        "{m}"
    );
    assert_eq!(m["decode_ms_per_token"].as_array().unwrap().len(), 3);
}

#[test]
fn decode_step_budget_sums_components_against_the_engine() {
    use mistral_rs_bench::config::Models;
    let p = Models::load_default().unwrap().get("tiny").unwrap().clone();
    let l = p.layers as f64;
    let ms = |x: f64| x * 1e6;
    let mut cases = vec![
        case(
            "attention",
            "tiny/decode/naive/ctx512",
            "tiny",
            ms(0.1),
            None,
        ),
        case(
            "quant_matmul",
            "tiny/float/f32/q/m1",
            "tiny",
            ms(0.02),
            None,
        ),
        case(
            "quant_matmul",
            "tiny/float/f32/k_v/m1",
            "tiny",
            ms(0.01),
            None,
        ),
        case(
            "quant_matmul",
            "tiny/float/f32/o/m1",
            "tiny",
            ms(0.02),
            None,
        ),
        case("ffn", "tiny/float/f32/decode/t1", "tiny", ms(0.2), None),
        case("small_ops", "tiny/rmsnorm/t1", "tiny", ms(0.005), None),
        case("small_ops", "tiny/rope/t1", "tiny", ms(0.01), None),
        case("kv_cache", "tiny/grow512/len511", "tiny", ms(0.001), None),
        case("small_ops", "tiny/embedding/t1", "tiny", ms(0.003), None),
        case("small_ops", "tiny/lm_head/t1", "tiny", ms(0.05), None),
        // sampling missing on purpose
    ];
    // engine: 2 ms/token over 127 tokens
    cases.push(case(
        "generation",
        "tiny-synthetic-f32/decode/tg128/depth512",
        "tiny",
        127.0 * ms(2.0),
        Some(127),
    ));
    let s = cpu_summary(cases);
    let b = tiny_budget(&s, &p);
    let expect = l * (0.1 + 0.02 + 2.0 * 0.01 + 0.02 + 0.2 + 0.01 + 0.001)
        + (2.0 * l + 1.0) * 0.005
        + 0.003
        + 0.05;
    assert!(
        (b.components_ms - expect).abs() < 1e-9,
        "{} vs {expect}",
        b.components_ms
    );
    assert!((b.e2e_ms.unwrap() - 2.0).abs() < 1e-9);
    assert!((b.remainder_ms.unwrap() - (2.0 - expect)).abs() < 1e-9);
    assert_eq!(
        b.missing,
        vec!["small_ops/tiny/sampling/greedy".to_string()]
    );
    let md = mistral_rs_bench::analysis::budget::markdown(&b);
    assert!(
        md.contains("remainder (engine overhead)") && md.contains("kv append"),
        "{md}"
    );
    // shares add up with the remainder to 100 %
    let shares: f64 = b.rows.iter().filter_map(|r| r.share_pct).sum();
    assert!((shares + b.remainder_pct.unwrap() - 100.0).abs() < 1e-9);
}

#[test]
fn every_committed_summary_loads_with_typed_ids() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target-baselines");
    let mut n = 0;
    for e in walkdir::WalkDir::new(&root)
        .into_iter()
        .filter_map(|e| e.ok())
    {
        let name = e.file_name().to_string_lossy().to_string();
        if !(name.ends_with(".json")
            && (name.starts_with("summary-") || name.starts_with("peers-torch-")))
        {
            continue;
        }
        let s = mistral_rs_bench::results::Summary::load(e.path())
            .unwrap_or_else(|err| panic!("{err:#}"));
        for c in &s.cases {
            let id = c
                .case_id
                .as_ref()
                .unwrap_or_else(|| panic!("{}: {} has no typed id", e.path().display(), c.case));
            assert_eq!(id.to_string(), c.case);
            assert_eq!(id.group().to_string(), c.group, "{}", c.case);
        }
        n += 1;
    }
    assert!(n >= 4, "only {n} committed summaries");
}

/// The tiny preset (and its layer count) and its naive attention case at 0.5 ms, marked as
/// a stand-in (the engine runs its private CPU kernel), for the budget tests.
fn tiny_with_stand_in() -> (
    mistral_rs_bench::config::Preset,
    f64,
    mistral_rs_bench::results::CaseSummary,
) {
    use mistral_rs_bench::config::Models;
    let p = Models::load_default().unwrap().get("tiny").unwrap().clone();
    let l = p.layers as f64;
    let mut attn = case("attention", "tiny/decode/naive/ctx512", "tiny", 0.5e6, None);
    attn.stand_in = Some("the engine runs its private CPU kernel".into());
    (p, l, attn)
}

#[test]
fn a_stand_in_is_shown_in_the_budget_but_never_summed() {
    let (p, l, attn) = tiny_with_stand_in();
    let ms = |x: f64| x * 1e6;
    let cases = vec![
        attn,
        case("ffn", "tiny/float/f32/decode/t1", "tiny", ms(0.2), None),
        case(
            "generation",
            "tiny-synthetic-f32/decode/tg128/depth512",
            "tiny",
            127.0 * ms(2.0),
            Some(127),
        ),
    ];
    let s = cpu_summary(cases);
    let b = tiny_budget(&s, &p);
    // only the FFN is summed; the stand-in attention row keeps its own figure
    assert!(
        (b.components_ms - l * 0.2).abs() < 1e-9,
        "{}",
        b.components_ms
    );
    let row = b.rows.iter().find(|r| r.part == "attention").unwrap();
    assert_eq!(row.total_ms, Some(l * 0.5));
    assert!(row.stand_in.is_some());
    let md = mistral_rs_bench::analysis::budget::markdown(&b);
    assert!(md.contains("attention (stand-in, not summed)"), "{md}");
    assert!(md.contains("Stand-in, left out of the sum"), "{md}");
}

#[test]
fn the_report_says_how_the_results_were_built() {
    use mistral_rs_bench::results::tables;
    use mistral_rs_bench::util::build::BuildInfo;
    let mut s = cpu_summary(vec![]);
    assert!(tables::report(&s).contains("Build: not recorded"));
    s.build = Some(BuildInfo::current());
    let r = tables::report(&s);
    let line = r.lines().find(|l| l.starts_with("Build: ")).unwrap();
    assert!(line.contains("rustflags"), "{line}");
    // this crate's own build: the flags of .cargo/config.toml (or RUSTFLAGS) are recorded
    let b = BuildInfo::current();
    assert!(b.target_features.iter().any(|f| f == "sse2"), "{b:?}");
    assert!(b.same_code_paths(&b.clone()));
    // and the engine it links, from this crate's Cargo.lock
    assert!(b.engine.starts_with("mistralrs-core "), "{b:?}");
    assert!(
        b.engine.contains(mistral_rs_bench::MISTRALRS_VERSION),
        "{b:?}"
    );
}

#[test]
fn a_flag_passed_twice_is_the_same_build_but_another_flag_is_not() {
    use mistral_rs_bench::util::build::BuildInfo;
    let with = |flags: &str| BuildInfo {
        rustflags: flags.into(),
        ..BuildInfo::current()
    };
    let once = with("-C target-cpu=native");
    // a crate copy built inside this folder gets both .cargo/config.toml's flags
    let twice = with("-C target-cpu=native -C target-cpu=native");
    assert_eq!(twice.flags(), vec!["-C target-cpu=native".to_string()]);
    assert!(once.same_code_paths(&twice));
    let v3 = with("-C target-cpu=native -C target-cpu=x86-64-v3");
    assert!(!once.same_code_paths(&v3));
    assert_eq!(
        once.differences(&v3).len(),
        1,
        "{:?}",
        once.differences(&v3)
    );
    // a different engine is not a different code path of the suite: comparing two is the point
    let other_engine = BuildInfo {
        engine: "mistralrs-core 0.9.2 (checkout v0.9.2)".into(),
        ..once.clone()
    };
    assert!(once.same_code_paths(&other_engine));
}

/// The decode budget of preset `p` at context 512 with f32 projections.
fn tiny_budget(
    s: &mistral_rs_bench::results::Summary,
    p: &mistral_rs_bench::config::Preset,
) -> mistral_rs_bench::analysis::budget::Budget {
    mistral_rs_bench::analysis::budget::build(s, p, 512, &"float/f32".parse().unwrap(), None, None)
        .unwrap()
}

/// A CPU summary holding `cases` (no ceilings, no build record).
fn cpu_summary(
    cases: Vec<mistral_rs_bench::results::CaseSummary>,
) -> mistral_rs_bench::results::Summary {
    mistral_rs_bench::results::Summary {
        device: "cpu".into(),
        device_name: "t".into(),
        profile: serde_json::Value::Null,
        mistralrs_version: "0.8.1".into(),
        written_at: String::new(),
        ceilings: None,
        llc_bytes: None,
        cases,
        derived: serde_json::Value::Null,
        build: None,
        run: None,
        peer_build: None,
        tool_runs: Vec::new(),
    }
}

#[test]
fn the_budget_sets_each_component_sum_beside_the_engine_s_own_figure() {
    use mistral_rs_bench::device::insitu::{Breakdown, Part, PartShare};
    let (p, l, attn) = tiny_with_stand_in();
    let ms = |x: f64| x * 1e6;
    let mut e2e = case(
        "generation",
        "tiny-synthetic-f32/decode/tg128/depth512",
        "tiny",
        127.0 * ms(2.0),
        Some(127),
    );
    let share = |part: Part, per_unit_ms: f64| PartShare {
        part,
        wall_s: per_unit_ms,
        wall_share: per_unit_ms / 2.0,
        per_unit_ms,
        per_unit_range_ms: [per_unit_ms, per_unit_ms],
        cpu_s: 0.0,
        cpu_share: 0.0,
        wait_s: 0.0,
        pool_wait_s: 0.0,
    };
    e2e.insitu = Some(Breakdown {
        engine: "mistralrs-core 0.8.1".into(),
        phase: None,
        rules: "mistralrs-core 0.8.1".into(),
        hz: 100.0,
        ticks: 100,
        threads: 4,
        unit: "token".into(),
        units: 127,
        sampled_s: 0.254,
        timed_s: 0.254,
        coverage: 1.0,
        per_unit_ms: 2.0,
        // the FFN's three parts together are twice the component sum; attention, the rest
        parts: vec![
            share(Part::FfnGateUp, l * 0.2),
            share(Part::FfnDown, l * 0.15),
            share(Part::FfnAct, l * 0.05),
            share(Part::Attention, 0.8),
            share(Part::HostEngine, 2.0 - 0.8 - l * 0.4),
        ],
        unassigned_wall: 0.0,
        unassigned_cpu: 0.0,
        dropped: 0,
        late_ticks: 0,
        without_ms: None,
        overhead_pct: None,
        suite_ms: None,
        vs_suite_pct: None,
        gpu: None,
        engine_wait_share: None,
    });
    let cases = vec![
        attn,
        case("ffn", "tiny/float/f32/decode/t1", "tiny", ms(0.2), None),
        e2e,
    ];
    let b = tiny_budget(&cpu_summary(cases), &p);
    let row = |name: &str| b.rows.iter().find(|r| r.part == name).unwrap();
    let ffn = row("ffn (gate, up, down)");
    assert!((ffn.insitu_ms.unwrap() - l * 0.4).abs() < 1e-9);
    assert!((ffn.agreement_pct.unwrap() + 50.0).abs() < 1e-9);
    // a stand-in has the engine's figure but no agreement (its path is not the engine's)
    let a = row("attention");
    assert_eq!(a.insitu_ms, Some(0.8));
    assert_eq!(a.agreement_pct, None);
    assert_eq!(b.insitu_total_ms, Some(2.0));
    assert!(b.insitu_rest.iter().any(|(p, _)| *p == Part::HostEngine));
    let md = mistral_rs_bench::analysis::budget::markdown(&b);
    assert!(md.contains("-50 %"), "{md}");
    assert!(md.contains("in situ only: host_engine"), "{md}");
}
