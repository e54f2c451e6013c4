//! Reading Criterion's output and the roofline arithmetic of the summary.

use mistral_rs_bench::ceilings::Ceilings;
use mistral_rs_bench::summary::{index_criterion, read_estimates, roofline};

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
    let (gbps, gflops, pbw, pfl) = roofline(50_000_000_000, 1_000_000_000, 1e8, Some(&c));
    assert!((gbps - 10.0).abs() < 1e-9);
    assert!((gflops - 500.0).abs() < 1e-9);
    assert!((pbw.unwrap() - 50.0).abs() < 1e-9);
    assert!((pfl.unwrap() - 500.0).abs() < 1e-9);
}
