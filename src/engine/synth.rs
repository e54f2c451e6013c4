//! Synthetic models: a HuggingFace-style Llama directory for any `models.toml` preset
//! (`config.json`, `model.safetensors` with seeded random weights at a trained model's scale,
//! `tokenizer.json`, `tokenizer_config.json` with a chat template, `generation_config.json`),
//! so end-to-end generation runs at real shapes with no download. Written under
//! `target/mistral-rs-bench/models/<preset>-<dtype>/` and re-used while the preset is unchanged.

use crate::config::{dtype_name, Preset};
use anyhow::{bail, Context, Result};
use candle_core::DType;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use rayon::prelude::*;
use safetensors::tensor::{Dtype as StDtype, View};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::{AddedToken, Tokenizer};

/// Special tokens of the synthetic tokenizer (ids 0, 1, 2); ordinary words `w3`, `w4`, ...
pub const UNK: &str = "<unk>";
pub const BOS: &str = "<s>";
pub const EOS: &str = "</s>";
/// First id of an ordinary token: prompts use ids in `FIRST_WORD..vocab`.
pub const FIRST_WORD: u32 = 3;

/// Folder of the synthetic model for `preset` in `dtype`.
pub fn model_dir(preset: &Preset, dtype: DType) -> PathBuf {
    // Not under `out_dir()`: a run with its own output folder reuses the written models.
    crate::util::paths::target_dir()
        .join("mistral-rs-bench")
        .join("models")
        .join(format!("{}-{}", preset.name, dtype_name(dtype)))
}

/// The HF `config.json` of the preset (Llama architecture).
pub fn config_json(p: &Preset, dtype: DType) -> serde_json::Value {
    serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "hidden_size": p.hidden,
        "intermediate_size": p.intermediate,
        "num_hidden_layers": p.layers,
        "num_attention_heads": p.heads,
        "num_key_value_heads": p.kv_heads,
        "head_dim": p.head_dim,
        "vocab_size": p.vocab,
        "rms_norm_eps": p.rms_eps,
        "rope_theta": p.rope_theta,
        "max_position_embeddings": p.max_context,
        "tie_word_embeddings": p.tie_embeddings,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": match dtype { DType::BF16 => "bfloat16", DType::F16 => "float16", _ => "float32" },
    })
}

/// A lazily generated weight: its bytes are produced when the safetensors writer asks for
/// them, so peak memory is one tensor, not the model.
struct LazyWeight {
    shape: Vec<usize>,
    dtype: DType,
    /// Uniform in `[-a, a]` (std a/√3), or a constant when `constant` is set.
    a: f32,
    constant: Option<f32>,
    seed: u64,
    bar: ProgressBar,
}

impl View for &LazyWeight {
    fn dtype(&self) -> StDtype {
        match self.dtype {
            DType::BF16 => StDtype::BF16,
            DType::F16 => StDtype::F16,
            _ => StDtype::F32,
        }
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data_len(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size_in_bytes()
    }
    fn data(&self) -> Cow<'_, [u8]> {
        const CHUNK: usize = 1 << 20;
        let n: usize = self.shape.iter().product();
        let es = self.dtype.size_in_bytes();
        let mut out = vec![0u8; n * es];
        out.par_chunks_mut(CHUNK * es)
            .enumerate()
            .for_each(|(ci, buf)| {
                let mut rng = SmallRng::seed_from_u64(
                    self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ci as u64,
                );
                for b in buf.chunks_exact_mut(es) {
                    let x = self
                        .constant
                        .unwrap_or_else(|| rng.random_range(-self.a..=self.a));
                    match self.dtype {
                        DType::BF16 => b.copy_from_slice(&half::bf16::from_f32(x).to_le_bytes()),
                        DType::F16 => b.copy_from_slice(&half::f16::from_f32(x).to_le_bytes()),
                        _ => b.copy_from_slice(&x.to_le_bytes()),
                    }
                }
            });
        self.bar.inc(out.len() as u64);
        Cow::Owned(out)
    }
}

/// The tensors of a Llama checkpoint for the preset: `(name, shape, kind)`.
fn tensor_list(p: &Preset) -> Vec<(String, Vec<usize>, &'static str)> {
    let (h, i) = (p.hidden, p.intermediate);
    let (qd, kvd) = (p.heads * p.head_dim, p.kv_heads * p.head_dim);
    let mut v = vec![(
        "model.embed_tokens.weight".to_string(),
        vec![p.vocab, h],
        "embed",
    )];
    for l in 0..p.layers {
        let pre = format!("model.layers.{l}");
        v.push((format!("{pre}.input_layernorm.weight"), vec![h], "norm"));
        v.push((
            format!("{pre}.post_attention_layernorm.weight"),
            vec![h],
            "norm",
        ));
        v.push((
            format!("{pre}.self_attn.q_proj.weight"),
            vec![qd, h],
            "linear",
        ));
        v.push((
            format!("{pre}.self_attn.k_proj.weight"),
            vec![kvd, h],
            "linear",
        ));
        v.push((
            format!("{pre}.self_attn.v_proj.weight"),
            vec![kvd, h],
            "linear",
        ));
        v.push((
            format!("{pre}.self_attn.o_proj.weight"),
            vec![h, qd],
            "linear",
        ));
        v.push((format!("{pre}.mlp.gate_proj.weight"), vec![i, h], "linear"));
        v.push((format!("{pre}.mlp.up_proj.weight"), vec![i, h], "linear"));
        v.push((format!("{pre}.mlp.down_proj.weight"), vec![h, i], "linear"));
    }
    v.push(("model.norm.weight".to_string(), vec![h], "norm"));
    if !p.tie_embeddings {
        v.push(("lm_head.weight".to_string(), vec![p.vocab, h], "linear"));
    }
    v
}

/// A word-level tokenizer over `vocab` ids: `<unk>`, `<s>`, `</s>`, then `w3`, `w4`, ...;
/// whitespace-separated words map to ids one to one, so a prompt's token count is exact.
pub fn tokenizer(vocab: usize) -> Result<Tokenizer> {
    if vocab <= FIRST_WORD as usize {
        bail!("vocab {vocab} is too small for a synthetic tokenizer");
    }
    let mut map = ahash::AHashMap::with_capacity(vocab);
    map.insert(UNK.to_string(), 0);
    map.insert(BOS.to_string(), 1);
    map.insert(EOS.to_string(), 2);
    for id in FIRST_WORD..vocab as u32 {
        map.insert(format!("w{id}"), id);
    }
    let model = WordLevel::builder()
        .vocab(map)
        .unk_token(UNK.to_string())
        .build()
        .map_err(anyhow::Error::msg)?;
    let mut tok = Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(WhitespaceSplit));
    // mistral.rs's grammar support (llguidance) needs a byte-level or byte-fallback decoder;
    // the words are ASCII, which byte-level decoding maps to themselves.
    tok.with_decoder(Some(ByteLevel::default()));
    tok.add_special_tokens(&[
        AddedToken::from(UNK, true),
        AddedToken::from(BOS, true),
        AddedToken::from(EOS, true),
    ]);
    Ok(tok)
}

/// Writes (or re-uses) the synthetic model of `preset` in `dtype`; returns its folder.
/// The model is written into a temporary folder and renamed into place, so concurrent
/// writers (parallel tests, two benches) never see or leave a half-written model.
pub fn ensure(preset: &Preset, dtype: DType) -> Result<PathBuf> {
    let dir = model_dir(preset, dtype);
    let stamp = serde_json::to_string(&config_json(preset, dtype))?;
    let complete = |d: &Path| {
        std::fs::read_to_string(d.join(".complete")).ok().as_deref() == Some(stamp.as_str())
    };
    if complete(&dir) {
        return Ok(dir);
    }
    let parent = dir.parent().expect("model dir has a parent");
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = parent.join(format!(
        ".{}.tmp-{}-{:?}",
        preset.name,
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    write(preset, dtype, &tmp)?;
    std::fs::write(tmp.join(".complete"), &stamp)?;
    if complete(&dir) {
        // Someone else finished first.
        let _ = std::fs::remove_dir_all(&tmp);
        return Ok(dir);
    }
    if dir.exists() {
        // A stale or incomplete model of an older preset definition: replace it.
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot replace {}", dir.display()))?;
    }
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        Err(_) if complete(&dir) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(e).with_context(|| format!("cannot move the model into {}", dir.display())),
    }
}

/// Writes all files of the synthetic model into `dir` (replacing an incomplete one).
pub fn write(p: &Preset, dtype: DType, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let list = tensor_list(p);
    let total: u64 = list
        .iter()
        .map(|(_, s, _)| s.iter().product::<usize>() as u64 * dtype.size_in_bytes() as u64)
        .sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("writing {msg} {bar:30} {bytes}/{total_bytes} ({eta})")
            .expect("valid template"),
    );
    bar.set_message(format!("synthetic {} ({})", p.name, dtype_name(dtype)));
    let weights: Vec<(String, LazyWeight)> = list
        .into_iter()
        .enumerate()
        .map(|(idx, (name, shape, kind))| {
            let fan_in = *shape.last().expect("non-empty shape") as f32;
            let (a, constant) = match kind {
                "norm" => (0.0, Some(1.0)),
                // Embedding rows of a trained model have std ≈ 0.02.
                "embed" => (0.02 * 3f32.sqrt(), None),
                // Linear weights with std 1/√fan_in keep activations at scale.
                _ => ((3.0 / fan_in).sqrt(), None),
            };
            let w = LazyWeight {
                shape,
                dtype,
                a,
                constant,
                seed: 1000 + idx as u64,
                bar: bar.clone(),
            };
            (name, w)
        })
        .collect();
    let file = dir.join("model.safetensors");
    safetensors::tensor::serialize_to_file(
        weights.iter().map(|(n, w)| (n.as_str(), w)),
        None,
        &file,
    )
    .with_context(|| format!("cannot write {}", file.display()))?;
    bar.finish_and_clear();

    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config_json(p, dtype))?,
    )?;
    tokenizer(p.vocab)?
        .save(dir.join("tokenizer.json"), false)
        .map_err(|e| anyhow::anyhow!("cannot write tokenizer.json: {e}"))?;
    let tok_cfg = serde_json::json!({
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": UNK,
        "add_bos_token": false,
        "add_eos_token": false,
        "model_max_length": p.max_context,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": "{% for message in messages %}{{ message['content'] }} {% endfor %}",
    });
    std::fs::write(
        dir.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&tok_cfg)?,
    )?;
    let gen_cfg = serde_json::json!({ "bos_token_id": 1, "eos_token_id": 2 });
    std::fs::write(
        dir.join("generation_config.json"),
        serde_json::to_string_pretty(&gen_cfg)?,
    )?;
    Ok(())
}
