//! The peers (issue 6): candle computes what the engine computes on the same inputs, a
//! candle-transformers model decodes what mistral.rs decodes from the same weights, and the
//! report reads summaries into the right rows and ratios.

use anyhow::Result;
use candle_core::{DType, Device, Tensor, D};
use mistral_rs_bench::case::Status;
use mistral_rs_bench::config::Models;
use mistral_rs_bench::engine::{runtime, Engine, EngineOptions, ModelRef};
use mistral_rs_bench::parts::quant::Format;
use mistral_rs_bench::parts::tensors::rel_error;
use mistral_rs_bench::parts::{attention, ffn, peers};
use mistral_rs_bench::report::peers as peers_report;
use mistral_rs_bench::results::{CaseSummary, Estimates, Summary};
use std::time::Duration;

fn preset(name: &str) -> mistral_rs_bench::config::Preset {
    Models::load_default().unwrap().get(name).unwrap().clone()
}

#[test]
fn candle_attention_equals_the_engine_reference() -> Result<()> {
    let p = preset("smollm2-135m");
    let dev = Device::Cpu;
    for (q_len, kv_len) in [(1, 700), (96, 96)] {
        let ours = peers::CandleAttention::new(&p, q_len, kv_len, DType::F32, &dev)?.forward()?;
        let i = attention::Inputs::new(&p, q_len, kv_len, DType::F32, &dev)?;
        let reference = attention::reference(&i)?;
        let err = rel_error(&ours, &reference)?;
        assert!(err < 1e-5, "q_len {q_len}: candle vs reference error {err}");
    }
    Ok(())
}

#[test]
fn candle_ffn_equals_the_engine_mlp() -> Result<()> {
    let p = preset("tiny");
    let dev = Device::Cpu;
    for t in [1, 33] {
        let ours = peers::CandleFfn::new(&p, t, DType::F32, &dev)?.forward()?;
        let engine = ffn::FfnCase::new(&p, t, Format::Float(DType::F32), DType::F32, &dev)?;
        let theirs = engine.mlp.forward(&engine.x)?;
        let err = rel_error(&ours, &theirs)?;
        assert!(err < 1e-5, "t {t}: candle FFN vs engine Mlp error {err}");
    }
    Ok(())
}

#[test]
fn candle_transformers_decodes_what_mistralrs_decodes() -> Result<()> {
    let p = preset("tiny");
    let dev = Device::Cpu;
    let model = ModelRef::Synthetic {
        preset: "tiny".into(),
        dtype: "f32".into(),
    };
    let prompt: Vec<u32> = (40..72).collect();
    let n = 6;

    let loaded = peers::load(&p, &model, DType::F32, &dev)?;
    assert_eq!(loaded.vocab, p.vocab);
    let mut m = loaded.model.lock().unwrap();
    m.start(&dev)?;
    let ids = Tensor::from_vec(prompt.clone(), (1, prompt.len()), &dev)?;
    let mut next = m.forward(&ids, 0)?.argmax(D::Minus1)?.to_vec1::<u32>()?[0];
    let mut candle_ids = vec![next];
    for pos in prompt.len()..prompt.len() + n - 1 {
        let x = Tensor::from_vec(vec![next], (1, 1), &dev)?;
        next = m.forward(&x, pos)?.argmax(D::Minus1)?.to_vec1::<u32>()?[0];
        candle_ids.push(next);
    }
    drop(m);

    let opts = EngineOptions {
        device: dev.clone(),
        isq: None,
        paged_ctx: None,
        max_seqs: 1,
        max_seq_len: 256,
        dtype: None,
    };
    let e = runtime().block_on(Engine::load(&model, Some(&p), &opts))?;
    let g = runtime().block_on(e.generate(prompt, n, false, Duration::from_secs(120)))?;
    let candle_text = e
        .tokenizer
        .decode(&candle_ids, false)
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    assert_eq!(g.gen_tokens, n);
    assert!(
        !candle_text.trim().is_empty(),
        "no text for ids {candle_ids:?}"
    );
    assert_eq!(
        g.text, candle_text,
        "greedy decoding of the same weights differs (candle ids {candle_ids:?})"
    );
    Ok(())
}

fn case(id: &str, group: &str, median_ns: f64, tokens: Option<u64>) -> CaseSummary {
    CaseSummary {
        case: id.into(),
        case_id: None,
        group: group.into(),
        preset: "smollm2-135m".into(),
        device: "cpu".into(),
        device_name: "test cpu".into(),
        dtype: "f32".into(),
        shape: String::new(),
        status: Status::Ok,
        reason: None,
        flops: 0,
        bytes: 0,
        tokens,
        estimates: Some(Estimates {
            median_ns,
            median_lo_ns: median_ns * 0.99,
            median_hi_ns: median_ns * 1.01,
            mad_ns: 0.0,
            mean_ns: median_ns,
            std_dev_ns: 0.0,
        }),
        tokens_per_s: tokens.map(|t| t as f64 / (median_ns * 1e-9)),
        gbps: None,
        gflops: None,
        pct_bw_ceiling: None,
        pct_flop_ceiling: None,
        fits_in_cache: None,
        measured_at: String::new(),
        extra: serde_json::json!({
            "itl_ms": { "p50": median_ns / 1e6 / 127.0, "p99": median_ns / 1e6 / 100.0 },
            "memory": { "kind": "process resident set (RSS)", "peak_mib": median_ns / 1e6 + 50.0,
                        "footprint_mib": median_ns / 1e6 },
        }),
        stand_in: None,
        insitu: None,
    }
}

fn summary(device: &str, cases: Vec<CaseSummary>) -> Summary {
    Summary {
        device: device.into(),
        device_name: "test".into(),
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
fn report_pairs_cases_and_computes_advantages() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let m = "smollm2-135m-synthetic-bf16";
    // the engine chose f16 (its `engine_dtype`); the peers ran f32
    let mut engine_decode = case(
        &format!("generation/{m}/decode/tg128/depth0"),
        "generation",
        1e9,
        Some(127),
    );
    engine_decode.dtype = "bf16".into();
    engine_decode.extra["engine_dtype"] = "f16".into();
    let mut suite = summary(
        "cpu",
        vec![
            // mistral.rs decodes 127 tokens in 1 s, candle in 2 s
            engine_decode,
            case(
                &format!("peers/candle/{m}/decode/tg128/depth0"),
                "peers",
                2e9,
                Some(127),
            ),
            // the engine's fastest attention path is the one compared
            case(
                "attention/smollm2-135m/decode/naive/ctx2048",
                "attention",
                900e3,
                None,
            ),
            case(
                "attention/smollm2-135m/decode/paged/ctx2048",
                "attention",
                300e3,
                None,
            ),
            case(
                "attention/smollm2-135m/decode/naive/ctx512",
                "attention",
                100e3,
                None,
            ),
            case(
                "peers/candle/smollm2-135m/attention/decode/ctx2048",
                "peers",
                600e3,
                None,
            ),
        ],
    );
    let torch = summary(
        "cpu",
        vec![
            case(
                &format!("peers/torch/{m}/decode/tg128/depth0"),
                "peers",
                0.5e9,
                Some(127),
            ),
            case(
                "peers/torch/smollm2-135m/attention/decode/ctx2048",
                "peers",
                150e3,
                None,
            ),
        ],
    );
    suite.build = Some(mistral_rs_bench::util::build::BuildInfo::current());
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    std::fs::write(&a, serde_json::to_string(&suite)?)?;
    std::fs::write(&b, serde_json::to_string(&torch)?)?;
    let r = peers_report::build(&[a.clone(), b.clone()])?;

    let decode = r
        .e2e
        .iter()
        .find(|x| x.metric == "decode/depth0")
        .expect("decode row");
    assert!((decode.advantage(1).unwrap() - 2.0).abs() < 1e-9);
    assert!((decode.advantage(2).unwrap() - 0.5).abs() < 1e-9);
    // Every engine's dtype is recorded on its row, and each engine's build (or its absence).
    assert_eq!(
        decode.dtypes,
        [
            Some("f16".into()),
            Some("f32".into()),
            Some("f32".into()),
            None
        ]
    );
    // Three engines have figures: the report shows those three and no llama.cpp column.
    assert_eq!(r.engines, vec![0, 1, 2]);
    let build = mistral_rs_bench::util::build::BuildInfo::current().describe();
    assert_eq!(r.builds[0].as_deref(), Some(build.as_str()));
    assert_eq!(r.builds[1].as_deref(), Some(build.as_str()));
    assert_eq!(r.builds[2].as_deref(), Some("not recorded"));
    let md = peers_report::markdown(&r);
    assert!(md.contains("f16 / f32 / f32"), "{md}");
    assert!(
        md.contains("Build of the PyTorch figures: not recorded"),
        "{md}"
    );
    let mem = r.e2e.iter().find(|x| x.unit == "MiB").expect("memory row");
    assert_eq!(mem.values[0], Some(1000.0));

    assert_eq!(r.components.len(), 1);
    let attn = &r.components[0];
    assert_eq!(attn.values, [Some(300.0), Some(600.0), Some(150.0), None]);
    assert_eq!(
        attn.notes[0].as_deref(),
        Some("attention/smollm2-135m/decode/paged/ctx2048")
    );
    assert!((attn.advantage(1).unwrap() - 2.0).abs() < 1e-9);

    // Written once; a second write without --force is refused and leaves the first intact.
    let out = dir.join("report");
    let md = peers_report::write(&r, &out, false)?;
    assert!(
        md.contains("| decode/depth0 | tok/s | 127 | 63.5 | 254 | 2.00× | 0.50× |"),
        "{md}"
    );
    assert!(!md.contains("llama.cpp"), "{md}");
    for f in [
        "peers.md",
        "peers.json",
        "tokens-per-s.svg",
        "components.svg",
        "memory.svg",
    ] {
        let text = std::fs::read_to_string(out.join(f))?;
        assert!(!text.is_empty(), "{f} is empty");
        if f.ends_with(".svg") {
            assert!(
                text.contains("<svg") && text.contains("<rect"),
                "{f} has no bars"
            );
        }
    }
    let err = peers_report::write(&r, &out, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--force"), "{err}");

    // Summaries of two devices are not compared.
    let gpu = summary("cuda0", vec![]);
    let c = dir.join("c.json");
    std::fs::write(&c, serde_json::to_string(&gpu)?)?;
    let err = peers_report::build(&[a, c.clone()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("different devices"), "{err}");
    // A file that is not a summary is named.
    std::fs::write(&c, "{")?;
    let err = format!("{:#}", peers_report::build(&[c]).unwrap_err());
    assert!(
        err.contains("c.json") && err.contains("not a summary"),
        "{err}"
    );
    Ok(())
}

/// The llama.cpp runner's summary (a real one, trimmed: tests/fixtures/peers/llamacpp-cpu.json,
/// written by scripts/peers/llamacpp_peers.py on this project's CPU) beside mistral.rs, candle
/// and PyTorch: four columns, ratios against each, llama-bench's own table.
#[test]
fn report_with_four_engines_sets_llama_cpp_beside_the_others() -> Result<()> {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/peers/llamacpp-cpu.json");
    let lc = Summary::load(&fixture)?;
    // every case id of the runner is a typed id of the suite
    for c in &lc.cases {
        assert!(c.id().is_some(), "{} is not a suite id", c.case);
    }
    let m = "SmolLM2-135M-Instruct.Q4_1";
    let lc_decode = lc
        .cases
        .iter()
        .find(|c| c.case == format!("peers/llamacpp/{m}/decode/tg128/depth0"))
        .expect("the fixture has llama.cpp's decode");
    let lc_tps = lc_decode.tokens_per_s.unwrap();
    let lc_q4k = lc
        .cases
        .iter()
        .find(|c| c.case == "peers/llamacpp/llama-3-8b/quant_matmul/q4/Q4K/down/m1")
        .expect("the fixture has llama.cpp's Q4K product");
    let lc_q4k_us = lc_q4k.median_ns().unwrap() / 1e3;

    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut mq4k = case(
        "quant_matmul/llama-3-8b/q4/Q4K/down/m1",
        "quant_matmul",
        lc_q4k_us * 1e3 * 2.0, // mistral.rs takes twice llama.cpp's time
        None,
    );
    mq4k.preset = "llama-3-8b".into();
    mq4k.extra["threads"] = 1.into();
    let suite = summary(
        "cpu",
        vec![
            // mistral.rs decodes at twice llama.cpp's rate
            case(
                &format!("generation/{m}/decode/tg128/depth0"),
                "generation",
                127.0 / (2.0 * lc_tps) * 1e9,
                Some(127),
            ),
            case(
                &format!("peers/candle/{m}/decode/tg128/depth0"),
                "peers",
                2e9,
                Some(127),
            ),
            mq4k,
        ],
    );
    let torch = summary(
        "cpu",
        vec![case(
            &format!("peers/torch/{m}/decode/tg128/depth0"),
            "peers",
            4e9,
            Some(127),
        )],
    );
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    std::fs::write(&a, serde_json::to_string(&suite)?)?;
    std::fs::write(&b, serde_json::to_string(&torch)?)?;
    // the fixture's device is the suite's ("cpu"), so the three files make one report
    let r = peers_report::build(&[a, b, fixture.clone()])?;
    assert_eq!(r.engines, vec![0, 1, 2, 3]);
    let decode = r
        .e2e
        .iter()
        .find(|x| x.subject == m && x.metric == "decode/depth0")
        .expect("decode row");
    assert!((decode.advantage(3).unwrap() - 2.0).abs() < 1e-9);
    assert_eq!(decode.dtypes[3].as_deref(), Some("Q4_1 (GGUF, KV f16)"));
    let q4k = r
        .components
        .iter()
        .find(|x| x.metric == "quant_matmul/q4/Q4K/down/m1")
        .expect("the Q4K product row");
    assert!((q4k.advantage(3).unwrap() - 0.5).abs() < 1e-9);
    assert_eq!(q4k.threads[0], Some(1));
    assert_eq!(q4k.threads[3], lc_q4k.extra["threads"].as_u64());
    // llama.cpp's build (its CMake flags) is the build of its column
    assert!(r.builds[3].as_deref().unwrap().contains("GGML_NATIVE=OFF"));
    let md = peers_report::markdown(&r);
    for want in [
        "| llama.cpp |",
        "| × vs llama.cpp |",
        "| decode/depth0 | tok/s |",
        "### llama-bench, as it reports",
        "tg128 @ d512",
        "Build of the llama.cpp figures: llama.cpp",
    ] {
        assert!(md.contains(want), "missing {want:?} in\n{md}");
    }
    // the plots keep one bar per shown engine
    let out = dir.join("report");
    peers_report::write(&r, &out, false)?;
    let svg = std::fs::read_to_string(out.join("tokens-per-s.svg"))?;
    assert!(svg.contains("llama.cpp"), "the legend names llama.cpp");
    Ok(())
}

/// The runner's parser of test-backend-ops' console output (real captures on this CPU) gives
/// suite cases at the engine's `quant_matmul` shape, one token only, in ns from the tool's µs;
/// the second capture's Q4_1 line (the SmolLM2 GGUF's format) becomes `q4/Q4_1`.
#[test]
fn llama_cpp_runner_parses_test_backend_ops_into_suite_cases() -> Result<()> {
    let all = parse_backend_ops_fixture("test-backend-ops-cpu.txt")?;
    assert!(all.iter().any(|c| c.contains("/q4/Q4K/")), "{all:?}");
    let q41 = parse_backend_ops_fixture("test-backend-ops-cpu-q4_1.txt")?;
    assert!(
        q41.iter()
            .any(|c| c == "peers/llamacpp/llama-3-8b/quant_matmul/q4/Q4_1/down/m1"),
        "{q41:?}"
    );
    Ok(())
}

/// The suite ids the runner's parser makes of one capture, after checking each against its line.
fn parse_backend_ops_fixture(name: &str) -> Result<Vec<String>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = root.join("tests/fixtures/peers").join(name);
    // -S: no site packages (CI's bare python3 has no numpy; the parser needs none)
    let out = std::process::Command::new("python3")
        .arg("-S")
        .arg(root.join("scripts/peers/llamacpp_peers.py"))
        .arg("--parse-backend-ops")
        .arg(&fixture)
        .output()?;
    assert!(
        out.status.success(),
        "the parser failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let text = std::fs::read_to_string(&fixture)?;
    let lines = text.lines().filter(|l| l.contains("us/run")).count();
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.len(), lines, "one record per perf line");
    let cases: Vec<CaseSummary> = serde_json::from_value(v["cases"].clone())?;
    let ones = recs.iter().filter(|r| r["n"] == 1).count();
    assert!(ones >= 3, "the capture has one-token products");
    assert_eq!(cases.len(), ones, "one case per one-token product");
    for c in &cases {
        let id = c
            .id()
            .unwrap_or_else(|| panic!("{} is not a suite id", c.case));
        assert_eq!(id.preset_name(), Some("llama-3-8b"));
        assert!(c.case.ends_with("/down/m1"), "{}", c.case);
        let rec = recs
            .iter()
            .find(|r| {
                r["n"] == 1
                    && c.shape.contains(&format!("W=[{},{}]", r["m"], r["k"]))
                    && c.dtype == r["type_a"].as_str().unwrap()
            })
            .expect("its record");
        let us = rec["us_per_run"].as_f64().unwrap();
        assert!((c.median_ns().unwrap() - us * 1e3).abs() < 1e-6 * us);
    }
    Ok(cases.into_iter().map(|c| c.case).collect())
}

/// llama.cpp's side of the in-situ split (scripts/peers/llamacpp_split.py): the nodes of a
/// decode graph recorded from its scheduler callback on the SmolLM2 GGUF (the embedding,
/// layer 0 and the head) go to the suite's parts by op and weight, and the views between a
/// part's nodes (no work) join the part after them, so they do not cut its range.
#[test]
fn llama_cpp_graph_nodes_go_to_the_suites_parts() -> Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3")
        .arg("-S")
        .arg(root.join("scripts/peers/llamacpp_split.py"))
        .arg("--classify")
        .arg(root.join("tests/fixtures/peers/llamacpp-graph-nodes.json"))
        .output()?;
    assert!(
        out.status.success(),
        "the classifier failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nodes: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)?;
    let part = |name: &str, op: &str| -> String {
        nodes
            .iter()
            .find(|n| n["name"] == name && n["op"] == op)
            .unwrap_or_else(|| panic!("no node {name} {op}"))["part"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (name, op, want) in [
        ("embd", "GET_ROWS", "embedding"),
        ("norm-0", "RMS_NORM", "rmsnorm"),
        ("attn_norm-0", "MUL", "rmsnorm"),
        ("Qcur-0", "MUL_MAT", "qkvo_proj"),
        ("Qcur-0", "ROPE", "rope"),
        ("Qcur-0", "RESHAPE", "rope"), // a view joins the node after it
        ("cache_k_l0 (view)", "SET_ROWS", "kv_write"),
        ("node_21", "FLASH_ATTN_EXT", "attention"),
        ("attn_out-0", "MUL_MAT", "qkvo_proj"),
        ("ffn_gate-0", "MUL_MAT", "ffn_gate_up"),
        ("ffn_up-0", "MUL_MAT", "ffn_gate_up"),
        ("ffn_swiglu-0", "SWIGLU", "ffn_act"),
        ("ffn_out-0", "MUL_MAT", "ffn_down"),
        ("l_out-0", "ADD", "model_other"),
        ("result_output", "MUL_MAT", "lm_head"), // the tied LM head multiplies token_embd
    ] {
        assert_eq!(part(name, op), want, "{name} {op}");
    }
    // every node of the recording has one of the suite's parts
    let known = [
        "embedding",
        "rmsnorm",
        "qkvo_proj",
        "rope",
        "kv_write",
        "attention",
        "ffn_gate_up",
        "ffn_act",
        "ffn_down",
        "lm_head",
        "model_other",
    ];
    for n in &nodes {
        assert!(known.contains(&n["part"].as_str().unwrap()), "{n}");
    }
    Ok(())
}
