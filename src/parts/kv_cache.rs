//! `kv_cache`: the cost of appending one token's K and V to one layer's cache that already
//! holds `len` tokens, for the cache policies the engine and candle use:
//!
//! - `grow512`: a buffer that starts at 512 tokens and, when full, is re-allocated 512 tokens
//!   larger with the old contents copied over: the policy of mistral.rs's private
//!   `SingleCache` (`kv_cache/single_cache.rs`, `NormalCache::CACHE_GROW_SIZE = 512`),
//!   written here from that description ([`GrowCache`]).
//! - `prealloc`: `candle_nn::kv_cache::KvCache`, one buffer of the model's whole context.
//! - `concat`: `candle_nn::kv_cache::ConcatKvCache`, a new tensor per append.
//! - `paged`: `mistralrs_paged_attn::reshape_and_cache` into 32-token blocks (CUDA, Metal).
//!
//! Each case resets the cache to `len` tokens before every timed append (untimed), so every
//! sample is the append at exactly that length; the grow points show as jumps.

use crate::case::{elem_bytes, CachePolicy, Case, CaseId, Cost, Ctx, Runner, Spec};
use crate::config::{dtype_name, Preset};
use crate::parts::{paged, tensors::randn};
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::kv_cache::{ConcatKvCache, KvCache};

/// The engine's growth step.
pub const GROW: usize = 512;
/// Cache lengths before the append: both sides of the grow points at 512, 2048 and 8192, and
/// the longest contexts; capped below the preset's context.
pub const LENGTHS: &[usize] = &[0, 511, 512, 2047, 2048, 8191, 8192, 32767];

/// A KV buffer that grows by [`GROW`] tokens with a copy when full (the `SingleCache`
/// policy), along dimension 2 of `[batch, kv_heads, seq, head_dim]`.
#[derive(Debug, Clone)]
pub struct GrowCache {
    data: Option<Tensor>,
    len: usize,
    cap: usize,
    max: usize,
}

impl GrowCache {
    pub fn new(max: usize) -> Self {
        Self {
            data: None,
            len: 0,
            cap: GROW,
            max,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The first `len` tokens (a view, no copy).
    pub fn current(&self) -> Result<Option<Tensor>> {
        Ok(match &self.data {
            Some(d) => Some(d.narrow(2, 0, self.len)?),
            None => None,
        })
    }

    /// Appends `src` `[b, h, n, d]`; returns the bytes newly allocated.
    pub fn append(&mut self, src: &Tensor) -> Result<u64> {
        let n = src.dim(2)?;
        let mut allocated = 0;
        if self.data.is_none() {
            let mut shape = src.dims().to_vec();
            shape[2] = self.cap;
            let t = Tensor::zeros(shape, src.dtype(), src.device())?;
            allocated += (t.elem_count() * t.dtype().size_in_bytes()) as u64;
            self.data = Some(t);
        }
        if self.len + n > self.cap {
            let steps = (self.len + n - self.cap).div_ceil(GROW);
            let new_cap = self.cap + steps * GROW;
            if new_cap > self.max {
                bail!(
                    "kv cache: {new_cap} tokens exceed the maximum of {}",
                    self.max
                );
            }
            let mut shape = src.dims().to_vec();
            shape[2] = new_cap;
            let grown = Tensor::zeros(shape, src.dtype(), src.device())?;
            allocated += (grown.elem_count() * grown.dtype().size_in_bytes()) as u64;
            grown.slice_set(self.data.as_ref().expect("allocated above"), 2, 0)?;
            self.data = Some(grown);
            self.cap = new_cap;
        }
        self.data
            .as_ref()
            .expect("allocated above")
            .slice_set(src, 2, self.len)?;
        self.len += n;
        Ok(allocated)
    }
}

/// Cache policies this device can run.
pub fn policies(device: &Device) -> Vec<CachePolicy> {
    let mut v = vec![
        CachePolicy::Grow512,
        CachePolicy::Prealloc,
        CachePolicy::Concat,
    ];
    if device.is_cuda() || device.is_metal() {
        v.push(CachePolicy::Paged);
    }
    v
}

/// Bytes of one token's K (or V) in one layer.
fn row_bytes(p: &Preset, dtype: DType) -> u64 {
    (p.kv_heads * p.head_dim) as u64 * elem_bytes(dtype)
}

/// Bytes moved and bytes allocated by one append at `len` (K and V together). Moved bytes
/// count the copy of old contents (read + write) and the new row; the zero-fill of a new
/// buffer is not counted (on the CPU it is lazily mapped zero pages, on a GPU a memset), so
/// the achieved bandwidth is a lower bound, never inflated by allocation.
pub fn append_cost(p: &Preset, policy: CachePolicy, len: usize, dtype: DType) -> (Cost, u64) {
    let row = row_bytes(p, dtype);
    let l = len as u64;
    let (moved, alloc) = match policy {
        CachePolicy::Grow512 => {
            if len == 0 {
                (row, GROW as u64 * row)
            } else if len.is_multiple_of(GROW) {
                let new_cap = l + GROW as u64;
                (2 * l * row + row, new_cap * row) // copy old (read + write), write new
            } else {
                (row, 0)
            }
        }
        CachePolicy::Prealloc => {
            if len == 0 {
                (row, p.max_context as u64 * row)
            } else {
                (row, 0)
            }
        }
        CachePolicy::Concat => (2 * l * row + 2 * row, (l + 1) * row), // read old + new, write all
        CachePolicy::Paged => (2 * row, 0),
    };
    (
        Cost {
            flops: 0,
            bytes: 2 * moved,
        },
        2 * alloc,
    )
}

pub fn specs(p: &Preset, ctx: &Ctx) -> anyhow::Result<Vec<Spec>> {
    let mut out = Vec::new();
    let lengths: Vec<usize> = LENGTHS
        .iter()
        .copied()
        .filter(|&l| l < p.max_context)
        .collect();
    for policy in policies(&ctx.device) {
        for &len in &lengths {
            let id = CaseId::preset(&p.name, Case::KvCache { policy, len });
            let shape = format!(
                "kv=[1,{},{len}+1,{}] {}",
                p.kv_heads,
                p.head_dim,
                dtype_name(ctx.dtype)
            );
            let (cost, alloc) = append_cost(p, policy, len, ctx.dtype);
            let mem = 4 * (p.max_context as u64 + GROW as u64) * row_bytes(p, ctx.dtype);
            let (preset, dtype) = (p.clone(), ctx.dtype);
            out.push(Spec::new(
                id,
                ctx.dtype,
                shape,
                cost,
                mem,
                Box::new(move |dev: &Device| {
                    let r: Box<dyn Runner> =
                        Box::new(AppendCase::new(&preset, policy, len, alloc, dtype, dev)?);
                    Ok(r)
                }),
            ));
        }
    }
    Ok(out)
}

/// One cache of each policy (only one is used per case).
#[derive(Clone)]
enum Cache {
    /// K and V buffers, each grown on its own (as `SingleCache` pairs are).
    Grow(GrowCache, GrowCache),
    Prealloc(KvCache),
    Concat(ConcatKvCache),
    #[allow(dead_code)]
    Paged {
        key_cache: Tensor,
        value_cache: Tensor,
        slot: Tensor,
    },
}

struct AppendCase {
    /// The cache holding `len` tokens, kept aside; each iteration appends to a clone.
    filled: Cache,
    work: Cache,
    k: Tensor,
    v: Tensor,
    extra: serde_json::Value,
}

impl AppendCase {
    fn new(
        p: &Preset,
        policy: CachePolicy,
        len: usize,
        alloc: u64,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        let k = randn((1, p.kv_heads, 1, p.head_dim), 1.0, 21, dtype, dev)?;
        let v = randn((1, p.kv_heads, 1, p.head_dim), 1.0, 22, dtype, dev)?;
        let mut filled = match policy {
            CachePolicy::Grow512 => {
                let max = p.max_context.max(GROW) + GROW;
                Cache::Grow(GrowCache::new(max), GrowCache::new(max))
            }
            CachePolicy::Prealloc => Cache::Prealloc(KvCache::new(2, p.max_context)),
            CachePolicy::Concat => Cache::Concat(ConcatKvCache::new(2)),
            CachePolicy::Paged => paged_cache(p, len, dtype, dev)?,
        };
        if len > 0 && !matches!(filled, Cache::Paged { .. }) {
            let kp = randn((1, p.kv_heads, len, p.head_dim), 1.0, 23, dtype, dev)?;
            let vp = randn((1, p.kv_heads, len, p.head_dim), 1.0, 24, dtype, dev)?;
            match &mut filled {
                Cache::Grow(ck, cv) => {
                    ck.append(&kp)?;
                    cv.append(&vp)?;
                }
                Cache::Prealloc(c) => {
                    c.append(&kp, &vp)?;
                }
                Cache::Concat(c) => {
                    c.append(&kp, &vp)?;
                }
                Cache::Paged { .. } => {}
            }
        }
        let extra = serde_json::json!({ "policy": policy, "len": len, "bytes_allocated": alloc });
        Ok(Self {
            work: filled.clone(),
            filled,
            k,
            v,
            extra,
        })
    }
}

#[allow(unused_variables)]
fn paged_cache(p: &Preset, len: usize, dtype: DType, dev: &Device) -> Result<Cache> {
    let (key_cache, value_cache) = paged::caches(p, paged::blocks(len + 1), dtype, dev)?;
    let slot = Tensor::new(&[len as i64], dev)?;
    Ok(Cache::Paged {
        key_cache,
        value_cache,
        slot,
    })
}

impl Runner for AppendCase {
    fn needs_reset(&self) -> bool {
        true
    }

    fn reset(&mut self) -> Result<()> {
        self.work = self.filled.clone();
        Ok(())
    }

    fn run(&mut self) -> Result<()> {
        match &mut self.work {
            Cache::Grow(ck, cv) => {
                ck.append(&self.k)?;
                cv.append(&self.v)?;
            }
            Cache::Prealloc(c) => {
                c.append(&self.k, &self.v)?;
            }
            Cache::Concat(c) => {
                c.append(&self.k, &self.v)?;
            }
            Cache::Paged {
                key_cache,
                value_cache,
                slot,
            } => {
                #[cfg(any(feature = "cuda", feature = "metal"))]
                {
                    let k = self.k.squeeze(0)?.transpose(0, 1)?.contiguous()?;
                    let v = self.v.squeeze(0)?.transpose(0, 1)?.contiguous()?;
                    mistralrs_paged_attn::reshape_and_cache(
                        &k,
                        &v,
                        None,
                        None,
                        key_cache,
                        value_cache,
                        slot,
                    )?;
                }
                #[cfg(not(any(feature = "cuda", feature = "metal")))]
                {
                    let _ = (key_cache, value_cache, slot);
                    bail!("paged KV cache needs the `cuda` or `metal` feature");
                }
            }
        }
        Ok(())
    }

    fn extra(&self) -> serde_json::Value {
        self.extra.clone()
    }
}
