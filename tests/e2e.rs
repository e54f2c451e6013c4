//! The engine wrapper and the synthetic model writer, on the `tiny` preset (CPU).

use mistral_rs_bench::config::Models;
use mistral_rs_bench::engine::{runtime, synth, Engine, EngineOptions, ModelRef};
use std::time::Duration;

fn tiny_engine() -> Engine {
    let p = Models::load_default().unwrap().get("tiny").unwrap().clone();
    let model = ModelRef::Synthetic {
        preset: "tiny".into(),
        dtype: "f32".into(),
    };
    let opts = EngineOptions {
        device: candle_core::Device::Cpu,
        isq: None,
        paged_ctx: None,
        max_seqs: 4,
        max_seq_len: 512,
        dtype: None,
    };
    runtime()
        .block_on(Engine::load(&model, Some(&p), &opts))
        .expect("load tiny")
}

#[test]
fn generates_exactly_the_asked_tokens() {
    let e = tiny_engine();
    assert_eq!(e.vocab, 1024);
    let prompt: Vec<u32> = (10..30).collect();
    let dl = Duration::from_secs(120);
    // Non-streaming: the engine's own Usage agrees with the request.
    let g = runtime()
        .block_on(e.generate(prompt.clone(), 9, false, dl))
        .unwrap();
    let u = g.usage.clone().expect("usage");
    assert_eq!(u.prompt_tokens, 20);
    assert_eq!(u.completion_tokens, 9);
    assert_eq!(g.gen_tokens, 9);
    // Streaming: one chunk per token, arrival times increase, decode time < total.
    let g = runtime()
        .block_on(e.generate(prompt.clone(), 9, true, dl))
        .unwrap();
    assert_eq!(g.gen_tokens, 9);
    assert_eq!(g.token_times.len(), 9);
    assert!(g.token_times.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(g.inter_token().len(), 8);
    assert!(g.ttft > Duration::ZERO && g.decode_time() < g.total);
    // Greedy decoding is deterministic.
    let g2 = runtime().block_on(e.generate(prompt, 9, true, dl)).unwrap();
    assert_eq!(g.text, g2.text);
}

#[test]
fn bad_requests_are_refused_before_reaching_the_engine() {
    let e = tiny_engine();
    let dl = Duration::from_secs(60);
    let err = runtime()
        .block_on(e.generate(vec![5, 1024], 4, true, dl))
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside the vocabulary"), "{err}");
    assert!(runtime().block_on(e.generate(vec![], 4, true, dl)).is_err());
    assert!(runtime()
        .block_on(e.generate(vec![5], 0, true, dl))
        .is_err());
    let err = runtime()
        .block_on(e.generate(vec![5; 1000], 100, true, dl))
        .unwrap_err()
        .to_string();
    assert!(err.contains("exceed"), "{err}");
    // A deadline that cannot be met ends the request with an error, not a hang.
    let err = runtime()
        .block_on(e.generate(vec![5; 8], 200, true, Duration::from_millis(1)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("timed out"), "{err}");
}

/// Both ways of a concurrent batch count every token: streamed (one chunk a token on the
/// synthetic word-level tokenizer) and whole (the engine's own count).
#[test]
fn concurrent_generation_returns_every_request() {
    let e = tiny_engine();
    for stream in [true, false] {
        let prompts: Vec<Vec<u32>> = (0..3).map(|i| vec![10 + i; 5]).collect();
        let gens = runtime()
            .block_on(e.generate_concurrent(prompts, 7, stream, Duration::from_secs(120)))
            .unwrap();
        assert_eq!(gens.len(), 3);
        assert!(gens.iter().all(|g| g.gen_tokens == 7), "stream {stream}");
        let usage = gens.iter().all(|g| g.usage.is_some());
        assert_eq!(
            usage, !stream,
            "a whole response carries the engine's usage"
        );
    }
}

#[test]
fn synthetic_model_has_the_preset_shapes() {
    let p = Models::load_default().unwrap().get("tiny").unwrap().clone();
    let dir = synth::ensure(&p, candle_core::DType::F32).unwrap();
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["hidden_size"], 256);
    assert_eq!(cfg["num_key_value_heads"], 2);
    assert_eq!(cfg["vocab_size"], 1024);
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    // embedding + per layer (2 norms + 7 projections) + final norm + untied LM head
    assert_eq!(st.len(), 1 + p.layers * 9 + 1 + 1);
    assert_eq!(
        st.tensor("model.layers.1.self_attn.k_proj.weight")
            .unwrap()
            .shape(),
        &[128, 256]
    );
    assert_eq!(
        st.tensor("model.layers.0.mlp.down_proj.weight")
            .unwrap()
            .shape(),
        &[256, 512]
    );
    // Weights at a trained model's scale: uniform with std 1/sqrt(fan_in).
    let w = st.tensor("model.layers.0.mlp.gate_proj.weight").unwrap();
    let v: Vec<f32> = w
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let std = (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt();
    assert!((std - 1.0 / 16.0).abs() < 0.003, "std {std}");
    // Norm weights are ones.
    let n = st.tensor("model.norm.weight").unwrap();
    assert!(n
        .data()
        .chunks_exact(4)
        .all(|b| f32::from_le_bytes(b.try_into().unwrap()) == 1.0));
    // The tokenizer maps words one to one and round-trips.
    let tok = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let enc = tok.encode("w3 w17 w1023 unknownword", false).unwrap();
    assert_eq!(enc.get_ids(), &[3, 17, 1023, 0]);
    assert_eq!(tok.get_vocab_size(true), 1024);
    // Re-use: a second call does not rewrite the model.
    let before = std::fs::metadata(dir.join("model.safetensors"))
        .unwrap()
        .modified()
        .unwrap();
    synth::ensure(&p, candle_core::DType::F32).unwrap();
    assert_eq!(
        before,
        std::fs::metadata(dir.join("model.safetensors"))
            .unwrap()
            .modified()
            .unwrap()
    );
}
