//! The `mistral-rs-bench` JSON binary, run as a user runs it, on the `tiny` synthetic model.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

fn run(input: &str) -> (i32, Value, String) {
    run_with(input, &[])
}

/// One engine run at a time: on the 2-core machine, runs of this file's tests side by side
/// starve each other's sampler thread (the in-situ test then sees too few distinct stacks).
static ONE_RUN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_with(input: &str, env: &[(&str, &str)]) -> (i32, Value, String) {
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = Command::new(env!("CARGO_BIN_EXE_mistral-rs-bench"))
        .env("MISTRALRS_BENCH_DEVICE", "cpu")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"));
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-12)
}

#[test]
fn answers_a_request_with_consistent_figures() {
    let (code, v, err) =
        run(r#"{"prompt":"w5 w6 w7 w8","iterations":4,"model":"tiny","max_tokens":12,"warmup":1}"#);
    assert_eq!(code, 0, "stderr: {err}");
    // The request as understood, with defaults filled in.
    assert_eq!(v["request"]["iterations"], 4);
    assert_eq!(v["request"]["concurrency"], 1);
    assert_eq!(v["request"]["seed"], 0);
    let env = &v["environment"];
    for k in [
        "device",
        "device_name",
        "dtype",
        "model",
        "quantization",
        "mistralrs_version",
        "crate_version",
        "git_commit",
    ] {
        assert!(env[k].is_string(), "environment.{k} missing: {env}");
    }
    assert_eq!(env["device"], "cpu");
    assert_eq!(env["mistralrs_version"], "0.8.1");
    let samples = v["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 4);
    for s in samples {
        // The synthetic tokenizer maps each word to one token.
        assert_eq!(s["n_prompt"], 4);
        // Generation really produced the asked number of tokens.
        assert_eq!(s["n_gen"], 12);
        let lat = s["latency_ms"].as_f64().unwrap();
        // tokens/s equals tokens over seconds
        assert!(close(
            s["total_ts"].as_f64().unwrap(),
            12.0 / (lat / 1e3),
            1e-9
        ));
        let ttft = s["ttft_ms"][0].as_f64().unwrap();
        assert!(ttft > 0.0 && ttft < lat, "ttft {ttft} vs latency {lat}");
        assert!(close(
            s["prefill_ts"][0].as_f64().unwrap(),
            4.0 / (ttft / 1e3),
            1e-9
        ));
        assert!(s["decode_ts"][0].as_f64().unwrap() > 0.0);
    }
    let sum = &v["summary"];
    assert_eq!(sum["n_prompt"], 4);
    assert_eq!(sum["n_gen"], 12);
    for k in [
        "latency_ms",
        "ttft_ms",
        "itl_ms",
        "prefill_ts",
        "decode_ts",
        "total_ts",
    ] {
        let s = &sum[k];
        let (p50, p90, p99) = (
            s["p50"].as_f64().unwrap(),
            s["p90"].as_f64().unwrap(),
            s["p99"].as_f64().unwrap(),
        );
        assert!(
            s["min"].as_f64().unwrap() <= p50
                && p50 <= p90
                && p90 <= p99
                && p99 <= s["max"].as_f64().unwrap(),
            "{k}: {s}"
        );
        let (mean, sd) = (s["mean"].as_f64().unwrap(), s["stddev"].as_f64().unwrap());
        assert!(
            close(s["cv"].as_f64().unwrap(), sd / mean, 1e-9),
            "{k}: {s}"
        );
    }
    // 4 iterations x 11 gaps between 12 tokens
    assert_eq!(sum["itl_ms"]["n"], 44);
    assert_eq!(sum["latency_ms"]["n"], 4);
    assert!(close(
        sum["avg_ts"].as_f64().unwrap(),
        sum["decode_ts"]["mean"].as_f64().unwrap(),
        1e-12
    ));
    assert!(sum["peak_rss_bytes"].as_u64().unwrap() > 1 << 20);
    assert!(
        sum["peak_device_memory_bytes"].is_null(),
        "no device memory on the CPU"
    );
    // Twelve generated words.
    assert_eq!(
        sum["completion_text"]
            .as_str()
            .unwrap()
            .matches('w')
            .count(),
        12,
        "{}",
        sum["completion_text"]
    );
}

#[test]
fn concurrent_requests_are_all_counted() {
    let (code, v, err) = run(
        r#"{"prompt":"hello","iterations":2,"model":"tiny","max_tokens":6,"concurrency":3,"warmup":0}"#,
    );
    assert_eq!(code, 0, "stderr: {err}");
    for s in v["samples"].as_array().unwrap() {
        assert_eq!(s["n_gen"], 18);
        assert_eq!(s["ttft_ms"].as_array().unwrap().len(), 3);
        assert_eq!(s["decode_ts"].as_array().unwrap().len(), 3);
    }
    assert_eq!(v["summary"]["ttft_ms"]["n"], 6);
}

fn expect_error(input: &str, kind: &str, needle: &str) {
    let (code, v, err) = run(input);
    assert_eq!(code, 2, "input {input}: {v}");
    assert_eq!(v["error"]["kind"], kind, "input {input}: {v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(needle),
        "input {input}: message `{msg}` lacks `{needle}`"
    );
    assert!(err.contains(needle), "stderr lacks the message: {err}");
}

#[test]
fn bad_input_gets_a_json_error_and_exit_2() {
    expect_error("this is not json", "invalid_json", "expected");
    expect_error("", "invalid_json", "EOF");
    expect_error(
        r#"{"prompt":"hi","iterations":5,"colour":"red"}"#,
        "invalid_request",
        "unknown field `colour`",
    );
    expect_error(
        r#"{"prompt":"hi","iterations":"five"}"#,
        "invalid_request",
        "invalid type",
    );
    expect_error(
        r#"{"iterations":5}"#,
        "invalid_request",
        "missing field `prompt`",
    );
    expect_error(
        r#"{"prompt":"hi","iterations":0}"#,
        "invalid_request",
        "`iterations`",
    );
    expect_error(
        r#"{"prompt":"hi","iterations":1000000000}"#,
        "invalid_request",
        "`iterations`",
    );
    expect_error(
        r#"{"prompt":"hi","iterations":-1}"#,
        "invalid_request",
        "invalid value",
    );
    expect_error(
        r#"{"prompt":"hi","max_tokens":0}"#,
        "invalid_request",
        "`max_tokens`",
    );
    expect_error(
        r#"{"prompt":"hi","concurrency":0}"#,
        "invalid_request",
        "`concurrency`",
    );
    expect_error(r#"{"prompt":"   "}"#, "invalid_request", "`prompt`");
    expect_error(
        r#"{"prompt":"hi","model":"models/nope.gguf"}"#,
        "model_not_found",
        "nope.gguf",
    );
    expect_error(
        r#"{"prompt":"hi","model":"no-such-preset"}"#,
        "model_not_found",
        "no-such-preset",
    );
    expect_error(
        r#"{"prompt":"hi","model":"tiny","device":"tpu"}"#,
        "invalid_device",
        "unknown device `tpu`",
    );
    expect_error(
        r#"{"prompt":"hi","model":"tiny","device":"cuda:x"}"#,
        "invalid_device",
        "not a device ordinal",
    );
    if !cfg!(feature = "cuda") {
        expect_error(
            r#"{"prompt":"hi","model":"tiny","device":"cuda"}"#,
            "invalid_device",
            "no CUDA support",
        );
    }
    expect_error(
        r#"{"prompt":"hi","model":"tiny","isq":"q3000"}"#,
        "invalid_request",
        "`isq`",
    );
}

#[test]
fn help_documents_the_protocol() {
    let out = Command::new(env!("CARGO_BIN_EXE_mistral-rs-bench"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let h = String::from_utf8_lossy(&out.stdout);
    for k in [
        "prompt",
        "iterations",
        "max_tokens",
        "warmup",
        "device",
        "isq",
        "concurrency",
        "seed",
        "avg_ts",
        "exits with code 2",
    ] {
        assert!(h.contains(k), "--help lacks {k}");
    }
}

#[test]
fn the_requested_dtype_reaches_the_engine_and_the_build_is_recorded() {
    // Auto on this CPU is f16; f32 asked for is what the engine computes in.
    let (code, v, err) = run(
        r#"{"prompt":"w5 w6","iterations":1,"model":"tiny","max_tokens":3,"warmup":0,"dtype":"f32"}"#,
    );
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(v["environment"]["dtype"], "f32", "{}", v["environment"]);
    assert_eq!(v["environment"]["requested_dtype"], "f32");
    let (code, v, err) =
        run(r#"{"prompt":"w5 w6","iterations":1,"model":"tiny","max_tokens":3,"warmup":0}"#);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(v["environment"]["requested_dtype"], "auto");
    assert_ne!(
        v["environment"]["dtype"], "f32",
        "Auto on this CPU is expected to be f16 (candle has no CPU bf16 matmul)"
    );
    // how the binary was built: the target features its compiler enabled
    let build = &v["environment"]["build"];
    assert!(build["target_features"].is_array(), "{build}");
    assert!(build["rustflags"].is_string(), "{build}");
    expect_error(
        r#"{"prompt":"hi","model":"tiny","dtype":"f8"}"#,
        "invalid_request",
        "`dtype`",
    );
}

/// A tiny-preset generation attributed in situ: each phase's breakdown covers its timed wall
/// time within 5 %, leaves at most 10 % unassigned, and finds the forward pass's parts.
#[test]
fn insitu_splits_prefill_and_decode_by_part() {
    // 5 kHz (the most): the tiny model's tokens take well under a millisecond, and at 1 kHz a
    // loaded machine (the other tests running beside) once left lm_head without a tick.
    // A part with a 5 % share is missed by n ticks with probability 0.95^n: at least 300
    // decode ticks make that < 1e-6. A loaded machine starves the sampler, so the request is
    // repeated with twice the iterations until the decode phase has them (3 tries).
    const MIN_DECODE_TICKS: u64 = 300;
    let mut iterations = 3u64;
    let v = loop {
        let (code, v, err) = run_with(
            &format!(
                r#"{{"prompt":"w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16","iterations":{iterations},"model":"tiny","max_tokens":160,"insitu":true}}"#
            ),
            &[("MISTRALRS_BENCH_INSITU_HZ", "5000")],
        );
        assert_eq!(code, 0, "stderr: {err}");
        let ticks = v["insitu"]["decode"]["ticks"].as_u64().unwrap_or(0);
        if ticks >= MIN_DECODE_TICKS || iterations >= 12 {
            break v;
        }
        iterations *= 2;
    };
    let ins = &v["insitu"];
    for phase in ["prefill", "decode"] {
        let b = &ins[phase];
        assert!(b.is_object(), "no {phase} breakdown: {ins}");
        let units = b["units"].as_u64().unwrap();
        assert_eq!(
            units,
            if phase == "prefill" { 12 } else { 159 } * iterations
        );
        let cov = b["coverage"].as_f64().unwrap();
        let ticks = b["ticks"].as_u64().unwrap();
        if phase == "decode" {
            assert!(
                ticks >= MIN_DECODE_TICKS,
                "{ticks} decode ticks at {iterations} iterations"
            );
            assert!((cov - 1.0).abs() <= 0.05, "decode coverage {cov}");
        }
        assert!(
            b["unassigned_wall"].as_f64().unwrap() <= 0.10,
            "{phase}: {b}"
        );
        // Per-part figures sum to the time per unit; the overhead is measured.
        let parts = b["parts"].as_array().unwrap();
        let sum: f64 = parts
            .iter()
            .map(|p| p["per_unit_ms"].as_f64().unwrap())
            .sum();
        assert!(close(sum, b["per_unit_ms"].as_f64().unwrap(), 1e-6));
        assert!(b["without_ms"].as_f64().unwrap() > 0.0);
        assert!(b["overhead_pct"].is_number());
    }
    let decode_parts: Vec<&str> = ins["decode"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["part"].as_str().unwrap())
        .collect();
    for p in ["ffn_gate_up", "qkvo_proj", "lm_head"] {
        assert!(decode_parts.contains(&p), "{p} missing: {decode_parts:?}");
    }
    // Without the field there is no attribution.
    let (code, v, _) = run(r#"{"prompt":"w5","iterations":1,"model":"tiny","max_tokens":2}"#);
    assert_eq!(code, 0);
    assert!(v["insitu"].is_null());
}

#[test]
fn ceilings_fresh_measures_and_caches_for_the_runs_after_it() {
    // `ceilings --fresh` is a GPU run's first step: what it measures must be what the
    // benches that follow use, not thrown away and measured again inside the first of them
    let tmp = tempfile::tempdir().unwrap();
    let ceil = |fresh: bool| -> Value {
        let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mistral-rs-bench"));
        cmd.arg("ceilings")
            .env("MISTRALRS_BENCH_DEVICE", "cpu")
            .env("MISTRALRS_BENCH_OUT", tmp.path());
        if fresh {
            cmd.arg("--fresh");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let first = ceil(true);
    let cached: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("ceilings-cpu.json")).expect("--fresh caches"),
    )
    .unwrap();
    assert_eq!(first, cached);
    // a plain `ceilings` afterwards reads that measurement (same time stamp and figures)
    assert_eq!(ceil(false), first);
    // and a second --fresh measures again
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_ne!(ceil(true)["measured_at"], first["measured_at"]);
}
