//! The summary writer: each measured case's Criterion folder is stamped with the build, and a
//! summary written by another build is kept aside instead of being merged into.

use candle_core::Device;
use mistral_rs_bench::case::{CaseId, CaseSet, Cost, Status};
use mistral_rs_bench::config::RunProfile;
use mistral_rs_bench::results::{criterion::BUILD_FILE, writer, Record, RunInfo, Summary};
use mistral_rs_bench::util::build::BuildInfo;

#[test]
fn cases_are_stamped_and_another_builds_summary_is_kept_aside() {
    let t = tempfile::tempdir().unwrap();
    let (out, crit) = (t.path().join("out"), t.path().join("criterion"));
    // one environment for the whole test (this test binary has no other test)
    std::env::set_var("MISTRALRS_BENCH_OUT", &out);
    std::env::set_var("CRITERION_HOME", &crit);
    // a Criterion result for one case
    let id: CaseId = "small_ops/tiny/rmsnorm/t1".parse().unwrap();
    let dir = crit.join("small_ops/tiny_rmsnorm_t1/new");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("benchmark.json"),
        serde_json::json!({"full_id": id.to_string()}).to_string(),
    )
    .unwrap();
    // a summary left by a build with other flags
    std::fs::create_dir_all(&out).unwrap();
    let mut other = BuildInfo::current();
    other.rustflags = "-C target-cpu=x86-64".into();
    other.target_features = vec!["sse2".into()];
    let old = serde_json::json!({
        "device": "cpu", "device_name": "t", "profile": null, "mistralrs_version": "0.8.1",
        "written_at": "2026-01-02T03:04:05Z", "ceilings": null, "cases": [], "build": other,
    });
    std::fs::write(out.join("summary-cpu.json"), old.to_string()).unwrap();

    let rec = Record {
        id: id.clone(),
        preset: "tiny".into(),
        dtype: "f32".into(),
        shape: String::new(),
        cost: Cost::new(1, 1),
        tokens: None,
        status: Status::Ok,
        reason: None,
        extra: serde_json::Value::Null,
        stand_in: None,
        insitu: None,
    };
    let run = RunInfo {
        set: CaseSet::Quick,
        duration_s: 12.5,
        finished: true,
    };
    let w = writer::write(
        &Device::Cpu,
        RunProfile::QUICK,
        &run,
        writer::RunKind::Measured,
        std::slice::from_ref(&rec),
        std::slice::from_ref(&rec),
        None,
    )
    .unwrap();
    // the case's folder says how it was built
    let stamp: BuildInfo =
        serde_json::from_str(&std::fs::read_to_string(dir.join(BUILD_FILE)).unwrap()).unwrap();
    assert_eq!(stamp, BuildInfo::current());
    // the other build's summary is kept, not merged into
    let aside = out.join("summary-cpu.2026-01-02T030405Z.json");
    assert_eq!(
        Summary::load(&aside).unwrap().build.unwrap().rustflags,
        "-C target-cpu=x86-64"
    );
    assert_eq!(w.summary.build, Some(BuildInfo::current()));
    assert_eq!(w.summary.cases.len(), 1);
    // the run's set and duration are recorded
    let r = w.summary.run.as_ref().unwrap();
    assert_eq!(
        (r.set, r.duration_s, r.finished),
        (CaseSet::Quick, 12.5, true)
    );
    // the same build's summary is merged into
    let w = writer::write(
        &Device::Cpu,
        RunProfile::QUICK,
        &run,
        writer::RunKind::Measured,
        &[],
        &[],
        None,
    )
    .unwrap();
    assert_eq!(w.summary.cases.len(), 1, "the first write's case is kept");
}
