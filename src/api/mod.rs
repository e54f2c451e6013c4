//! Layer 0, the engine's API: the one place that absorbs what changed in mistral.rs's (and its
//! candle's) public API between the releases this suite builds against. Parts, the engine
//! driver and the device probes call these functions and types; they never fork on a version.
//!
//! - default: mistralrs-core 0.8.1 from crates.io (candle 0.10.2);
//! - `engine-0_8_23`: a local checkout of a revision with 0.9's API but for the embedding,
//!   e.g. 4f6042b41 and 486ade2d8 (version 0.8.23, candle 0.11 from git): every 0.9.2 form
//!   below but `layers::embedding`'s;
//! - `engine-0_9` (which turns `engine-0_8_23` on): mistralrs-core 0.9 or newer, from
//!   a31c74f74 (#2280, "support lmhead/embedding quantization") on, whose embedding is a
//!   `QuantMethod`.
//!
//! `scripts/engine-manifest.py` guesses the feature from the checkout's version (0.9 or
//! newer: `engine-0_9`); a revision between two releases whose version does not say which
//! is built by `scripts/build-engine.sh` with each form in turn (`OTHER_API=1`).
//!
//! What differs, 0.8.1 → 0.9.2 (each function names the engine item it wraps); the last
//! column is the first form that has the 0.9.2 item:
//!
//! | item | 0.8.1 | 0.9.2 | from |
//! |---|---|---|---|
//! | quantized matmul with the activation cast | `QuantMethod::forward_autocast` | `QuantMethod::forward` | `engine-0_8_23` |
//! | `ShardedSafeTensors::wrap` | a boxed backend | the backend by value | `engine-0_8_23` |
//! | `layers::embedding` | `candle_nn::Embedding` | `Arc<dyn QuantMethod>` (`embedding_forward`) | `engine-0_9` |
//! | `RotaryEmbedding::forward` | per-sequence offsets `&[usize]` | a `u32` positions tensor | `engine-0_8_23` |
//! | the causal mask | `CausalMasker::make_causal_mask_as_attn_bias` | `make_causal_mask` → `AttentionMask` | `engine-0_8_23` |
//! | free device memory | `MemoryUsage::get_memory_available` | `MemoryUsage::query(..).available()` | `engine-0_8_23` |
//! | immediate ISQ | `set_immediate_isq(ty, predicates)` | `set_immediate_isq(ty, predicates, capture)` | `engine-0_8_23` |
//!
//! `NormalRequest::new_simple` and `GGUFSpecificConfig::default()` exist in both and are used
//! by the engine driver directly.

use candle_core::{DType, Device, Result, Tensor};
use mistralrs_core::layers::RotaryEmbedding;
use mistralrs_quant::{QuantMethod, ShardedVarBuilder};
use std::collections::HashMap;

/// The mistralrs-core version this binary was built against (from its Cargo.lock).
pub const ENGINE_VERSION: &str = env!("MISTRAL_RS_BENCH_ENGINE_VERSION");

/// Where that mistralrs-core came from: `crates.io`, or `checkout <revision>` (the revision
/// as `scripts/bench-mistralrs.sh` passes it in `MISTRALRS_BENCH_ENGINE_REV`).
pub const ENGINE_SOURCE: &str = env!("MISTRAL_RS_BENCH_ENGINE_SOURCE");

/// The engine's quantized matmul as its layers call it: the activation cast to the method's
/// activation dtype (8-bit and 4-bit GGUF formats take f32) and back.
pub fn qmatmul(layer: &dyn QuantMethod, x: &Tensor) -> Result<Tensor> {
    #[cfg(not(feature = "engine-0_8_23"))]
    return layer.forward_autocast(x);
    #[cfg(feature = "engine-0_8_23")]
    return layer.forward(x);
}

/// A `ShardedVarBuilder` over in-memory tensors (`ShardedSafeTensors::wrap`).
pub fn var_builder(
    tensors: HashMap<String, Tensor>,
    dtype: DType,
    device: &Device,
) -> ShardedVarBuilder {
    #[cfg(any(not(feature = "engine-0_8_23"), feature = "engine-0_8_mid"))]
    return mistralrs_quant::ShardedSafeTensors::wrap(Box::new(tensors), dtype, device.clone());
    #[cfg(all(feature = "engine-0_8_23", not(feature = "engine-0_8_mid")))]
    return mistralrs_quant::ShardedSafeTensors::wrap(tensors, dtype, device.clone());
}

/// The token embedding `layers::embedding` builds.
#[cfg(not(feature = "engine-0_9"))]
pub type Embedding = candle_nn::Embedding;
/// The token embedding `layers::embedding` builds.
#[cfg(feature = "engine-0_9")]
pub type Embedding = std::sync::Arc<dyn QuantMethod>;

/// `layers::embedding(vocab, hidden, vb, &None)`, the engine's unquantized embedding.
pub fn embedding(vocab: usize, hidden: usize, vb: ShardedVarBuilder) -> Result<Embedding> {
    mistralrs_core::layers::embedding(vocab, hidden, vb, &None)
}

/// The embedding lookup of token ids into `dtype` activations, as the engine's models call it.
pub fn embed(e: &Embedding, ids: &Tensor, dtype: DType) -> Result<Tensor> {
    #[cfg(not(feature = "engine-0_9"))]
    {
        let _ = dtype;
        candle_core::Module::forward(e, ids)
    }
    #[cfg(feature = "engine-0_9")]
    return e.embedding_forward(ids, dtype);
}

/// The positions RoPE rotates, in the form `RotaryEmbedding::forward` takes: per-sequence
/// offsets (0.8.1), or the `u32` tensor of every token's position that 0.9.2's pipeline builds
/// once per forward pass (`pipeline/mod.rs::text_positions_tensor`), made here at set-up.
#[cfg(any(not(feature = "engine-0_8_23"), feature = "engine-0_8_mid"))]
pub struct RopePositions(Vec<usize>);
/// See the 0.8.1 form.
#[cfg(all(feature = "engine-0_8_23", not(feature = "engine-0_8_mid")))]
pub struct RopePositions(Tensor);

impl RopePositions {
    /// `batch` sequences of `seq_len` tokens, each starting at `offset`.
    pub fn new(offset: usize, batch: usize, seq_len: usize, device: &Device) -> Result<Self> {
        #[cfg(any(not(feature = "engine-0_8_23"), feature = "engine-0_8_mid"))]
        {
            let _ = (seq_len, device);
            Ok(Self(vec![offset; batch]))
        }
        #[cfg(all(feature = "engine-0_8_23", not(feature = "engine-0_8_mid")))]
        {
            let pos: Vec<u32> = (0..batch)
                .flat_map(|_| (offset..offset + seq_len).map(|p| p as u32))
                .collect();
            Ok(Self(Tensor::from_vec(pos, batch * seq_len, device)?))
        }
    }
}

/// `RotaryEmbedding::forward` on q and k (`(batch, heads, seq, head_dim)`).
pub fn rope(
    r: &RotaryEmbedding,
    q: &Tensor,
    k: &Tensor,
    pos: &RopePositions,
) -> Result<(Tensor, Tensor)> {
    r.forward(q, k, &pos.0)
}

/// The causal mask the engine adds to attention scores in a prefill of `ids` (`(1, q_len)`)
/// with no past tokens, as a real tensor (`None` for a one-token decode).
pub fn causal_mask(ids: &Tensor, dtype: DType) -> Result<Option<Tensor>> {
    let cache: &[usize] = &[0];
    #[cfg(not(feature = "engine-0_8_23"))]
    return mistralrs_core::layers::CausalMasker.make_causal_mask_as_attn_bias(ids, &cache, dtype);
    #[cfg(feature = "engine-0_8_23")]
    {
        let cfg = mistralrs_core::layers::CausalMaskConfig {
            force_custom: true,
            ..Default::default()
        };
        let m = mistralrs_core::layers::CausalMasker.make_causal_mask(ids, &cache, dtype, &cfg)?;
        Ok(m.as_option_tensor().cloned())
    }
}

/// Free memory of a GPU as mistral.rs reads it (bytes).
pub fn device_memory_available(device: &Device) -> Option<u64> {
    #[cfg(not(feature = "engine-0_8_23"))]
    let free = mistralrs_core::MemoryUsage.get_memory_available(device);
    #[cfg(feature = "engine-0_8_23")]
    let free = mistralrs_core::MemoryUsage
        .query(device)
        .map(|m| m.available());
    free.ok().map(|b| b as u64)
}

/// Runs `build` with the engine's immediate ISQ installed for every layer it constructs, as
/// the engine's loader does when a model is loaded with ISQ (0.9.2
/// `pipeline/isq_flow/plan.rs::resolve_and_install_isq_plan`, which calls
/// `mistralrs_quant::set_immediate_isq_config`): each `ColumnParallelLayer::new` /
/// `RowParallelLayer::new` loads its weight on the host and quantizes it to `ty` onto the
/// builder's device as it is built. A layer built whole this way is what the engine runs; a
/// layer built unquantized and quantized afterwards is not where the layer derives state from
/// its weights at construction (from 7ed0e8441, #2180, `layers::Mlp::new` merges the
/// unquantized gate and up weights into one projection that its CPU `forward` prefers).
/// The layers come back as the engine's have them, quantized on its ISQ thread pool behind
/// `PendingIsqLayer` wrappers (a lock and an `Arc` clone per forward, in the engine too; the
/// first call on a layer waits for its quantization). Cleared when `build` returns,
/// also on error.
pub fn with_immediate_isq<T>(
    ty: mistralrs_quant::IsqType,
    build: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            mistralrs_quant::clear_immediate_isq();
        }
    }
    let every = vec![regex::Regex::new(".*").expect("a valid regex")];
    #[cfg(any(not(feature = "engine-0_8_23"), feature = "engine-0_8_mid"))]
    mistralrs_quant::set_immediate_isq(Some(ty), every);
    #[cfg(all(feature = "engine-0_8_23", not(feature = "engine-0_8_mid")))]
    mistralrs_quant::set_immediate_isq(Some(ty), every, Default::default());
    let _clear = Clear;
    build()
}
