//! The paged KV-cache layout of `mistralrs_paged_attn` (the engine's paged attention on CUDA
//! and Metal), shared by the `attention` group's `paged` path and the `kv_cache` group's
//! `paged` policy: key `[blocks, kv_heads, head_dim/x, block, x]` with x = 16 bytes of
//! elements, value `[blocks, kv_heads, head_dim, block]`.

use crate::config::Preset;
use anyhow::Result;
use candle_core::{DType, Device, Tensor};

/// Paged-attention block size (mistral.rs's default).
pub const PAGE_BLOCK: usize = 32;

/// Blocks needed for `tokens` tokens.
pub fn blocks(tokens: usize) -> usize {
    tokens.div_ceil(PAGE_BLOCK)
}

/// Zeroed key and value caches of `blocks` blocks for the preset's KV heads.
pub fn caches(p: &Preset, blocks: usize, dtype: DType, dev: &Device) -> Result<(Tensor, Tensor)> {
    let x = 16 / dtype.size_in_bytes();
    let key = Tensor::zeros(
        (blocks, p.kv_heads, p.head_dim / x, PAGE_BLOCK, x),
        dtype,
        dev,
    )?;
    let value = Tensor::zeros((blocks, p.kv_heads, p.head_dim, PAGE_BLOCK), dtype, dev)?;
    Ok((key, value))
}
