//! Typed case ids: every id the suite generates, and every id in the committed baselines,
//! reads back to the same typed id and prints back to the same string; the registry of parts
//! covers every group once.

use candle_core::{DType, Device};
use mistral_rs_bench::case::{
    AttnPath, CachePolicy, Case, CaseId, Ctx, Group, ModelName, PeerCase, PeerEngine, Phase,
    SmallOp, Workload,
};
use mistral_rs_bench::config::Models;
use mistral_rs_bench::parts::{self, REGISTRY};
use std::collections::BTreeSet;
use std::path::Path;
use strum::IntoEnumIterator;

#[test]
fn every_generated_id_round_trips() {
    let models = Models::load_default().unwrap();
    let mut n = 0;
    for p in models.presets.values() {
        for dtype in [DType::F32, DType::BF16] {
            let ctx = Ctx {
                device: Device::Cpu,
                dtype,
            };
            for part in REGISTRY {
                for s in (part.specs)(p, &ctx).unwrap() {
                    let text = s.full_id();
                    let back: CaseId = text.parse().unwrap();
                    assert_eq!(back, s.id, "{text}");
                    assert_eq!(back.to_string(), text);
                    assert_eq!(
                        s.group(),
                        part.group,
                        "{text} is listed under {}",
                        part.group
                    );
                    assert!(text.starts_with(&format!("{}/", part.group)));
                    assert_eq!(format!("{}/{}", part.group, s.id.local()), text);
                    n += 1;
                }
            }
        }
    }
    assert!(n > 500, "only {n} ids generated");
}

/// Every case id of every summary and Criterion result committed under target-baselines/.
fn committed_ids() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target-baselines");
    let mut ids = BTreeSet::new();
    for e in walkdir::WalkDir::new(&root)
        .into_iter()
        .filter_map(|e| e.ok())
    {
        let name = e.file_name().to_string_lossy().to_string();
        let is_summary = name.starts_with("summary-") || name.starts_with("peers-torch-");
        if !(name.ends_with(".json") && (is_summary || name == "benchmark.json")) {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
        if let Some(id) = v["full_id"].as_str() {
            ids.insert(id.to_string());
        }
        for c in v["cases"].as_array().into_iter().flatten() {
            if let Some(id) = c["case"].as_str() {
                ids.insert(id.to_string());
            }
        }
    }
    ids
}

#[test]
fn every_committed_id_round_trips() {
    let ids = committed_ids();
    assert!(ids.len() > 400, "only {} committed ids found", ids.len());
    let mut groups = BTreeSet::new();
    for text in &ids {
        let id: CaseId = text
            .parse()
            .unwrap_or_else(|e| panic!("committed id does not parse: {e:#}"));
        assert_eq!(&id.to_string(), text);
        groups.insert(id.group());
    }
    // the GPU baselines bring the CUDA-only variants too
    for g in Group::iter() {
        assert!(groups.contains(&g), "no committed case of group {g}");
    }
}

#[test]
fn typed_fields_are_what_the_id_says() {
    let id: CaseId = "attention/smollm2-135m/decode/paged/ctx2048"
        .parse()
        .unwrap();
    assert_eq!(id.preset_name(), Some("smollm2-135m"));
    assert_eq!(
        id.case,
        Case::Attention {
            phase: Phase::Decode,
            path: AttnPath::Paged,
            ctx: 2048
        }
    );
    let id: CaseId = "kv_cache/tiny/grow512/len511".parse().unwrap();
    assert_eq!(
        id.case,
        Case::KvCache {
            policy: CachePolicy::Grow512,
            len: 511
        }
    );
    let id: CaseId = "generation/llama-3-8b-synthetic-bf16-isq-Q4K/decode/tg128/depth4096"
        .parse()
        .unwrap();
    assert_eq!(
        id.model_name(),
        Some(&ModelName::Synthetic {
            preset: "llama-3-8b".into(),
            dtype: "bf16".into(),
            isq: Some("Q4K".into())
        })
    );
    assert_eq!(
        id.workload(),
        Some(Workload::Decode {
            gen: 128,
            depth: 4096
        })
    );
    let id: CaseId = "generation/SmolLM2-135M-Instruct.Q4_1/concurrent/c16"
        .parse()
        .unwrap();
    assert!(!id.model_name().unwrap().is_synthetic());
    assert_eq!(id.model_name().unwrap().isq(), None);
    let id: CaseId = "peers/torch/smollm2-135m/rmsnorm/t1".parse().unwrap();
    assert_eq!(
        id.case,
        Case::Peers {
            engine: PeerEngine::Torch,
            what: PeerCase::SmallOp(SmallOp::RmsNorm { tokens: 1 })
        }
    );
    // llama.cpp's matrix product at the engine's quant_matmul shape
    let s = "peers/llamacpp/llama-3-8b/quant_matmul/q4/Q4K/down/m1";
    let id: CaseId = s.parse().unwrap();
    match &id.case {
        Case::Peers {
            engine: PeerEngine::Llamacpp,
            what: PeerCase::QuantMatmul { format, proj, m },
        } => {
            assert_eq!(format.to_string(), "q4/Q4K");
            assert_eq!(proj.to_string(), "down");
            assert_eq!(*m, 1);
        }
        other => panic!("{s}: {other:?}"),
    }
    assert_eq!(id.preset_name(), Some("llama-3-8b"));
    assert_eq!(id.to_string(), s);
    let id: CaseId = "peers/candle/tiny-synthetic-f16/prefill/pp128"
        .parse()
        .unwrap();
    assert_eq!(id.workload(), Some(Workload::Prefill { prompt: 128 }));
    assert_eq!(id.group(), Group::Peers);
}

#[test]
fn malformed_ids_are_refused_with_the_id_named() {
    for bad in [
        "",
        "attention",
        "nonsense/tiny/x",
        "attention/tiny/sideways/naive/ctx1",
        "attention/tiny/decode/naive/ctx",
        "attention/tiny/decode/naive/len4",
        "attention/tiny/decode/bogus/ctx4",
        "attention/tiny/decode/naive/ctx4/extra",
        "kv_cache/tiny/lru/len0",
        "ffn/tiny/q5/Q4K/decode/t1",
        "quant_matmul/tiny/q4/Q4K/qkv/m1",
        "small_ops/tiny/softmax/t1",
        "small_ops/tiny/sampling/beam",
        "generation/m/decode/tg/depth0",
        "generation/m/decode/depth0",
        "peers/jax/tiny/rmsnorm/t1",
        "peers/candle/tiny/attention/decode",
    ] {
        let e = bad.parse::<CaseId>().unwrap_err();
        assert!(format!("{e:#}").contains(bad), "{bad}: {e:#}");
    }
}

#[test]
fn the_registry_holds_every_group_once_in_pipeline_order() {
    let groups: Vec<Group> = REGISTRY.iter().map(|p| p.group).collect();
    let all: Vec<Group> = Group::iter().collect();
    assert_eq!(groups, all, "REGISTRY must list every Group once, in order");
    assert_eq!(parts::position(Group::Attention), 0);
    assert!(parts::position(Group::SmallOps) < parts::position(Group::Generation));
    assert_eq!(
        parts::components().map(|p| p.group).collect::<Vec<_>>(),
        [
            Group::Attention,
            Group::Ffn,
            Group::KvCache,
            Group::QuantMatmul,
            Group::SmallOps
        ]
    );
}
