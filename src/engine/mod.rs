//! Layer 4, the engine: mistral.rs itself, loaded as its own builders load a model, with
//! EOS ignored (`with_disable_eos_stop`), the prefix cache off, greedy sampling, fixed
//! token-id prompts (`RequestMessage::CompletionTokens`) and a deadline on every request.
//! Clocks are read with `Instant` here: the engine's own `Usage` timings are whole
//! milliseconds, so they serve only to check the token counts.
//!
//! - this file: [`ModelRef`], [`Engine`] (load, generate, generate concurrently), the tokio
//!   runtime every end-to-end caller blocks on, the request deadline.
//! - [`synth`]: synthetic models written from a preset's shapes.
//! - [`cache`]: the one model cache (one loaded model per process: an engine or a peer's).
//!
//! Where mistral.rs's API changes between versions, this is the module that absorbs it.
//! Depends on [`crate::device`], [`crate::config`], [`crate::case`] and [`crate::util`].

pub mod cache;
pub mod synth;

use crate::case::ModelName;
use crate::config::{ModelSource, Preset};
use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device};
use mistralrs_core::{
    AutoDeviceMapParams, DefaultSchedulerMethod, DeviceMapSetting, GGUFLoaderBuilder,
    GGUFSpecificConfig, IsqType, Loader, MemoryGpuConfig, MistralRs, MistralRsBuilder, ModelDType,
    NormalLoaderBuilder, NormalLoaderType, NormalRequest, NormalSpecificConfig,
    PagedAttentionConfig, PagedCacheType, Request, RequestMessage, Response, SamplingParams,
    SchedulerConfig, TokenSource, Usage,
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::channel;

/// A model to run end to end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ModelRef {
    /// A synthetic model written from a preset (`synth`), in a dtype.
    Synthetic { preset: String, dtype: String },
    /// A GGUF file (tokenizer and chat template from its metadata).
    Gguf { path: PathBuf },
    /// A local HuggingFace-style directory (Llama architecture).
    Local { path: PathBuf },
}

impl ModelRef {
    /// The model as named in case ids.
    pub fn id_name(&self) -> ModelName {
        match self {
            ModelRef::Synthetic { preset, dtype } => ModelName::Synthetic {
                preset: preset.clone(),
                dtype: dtype.clone(),
                isq: None,
            },
            ModelRef::Gguf { path } | ModelRef::Local { path } => ModelName::File {
                stem: path
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_else(|| path.display().to_string()),
                isq: None,
            },
        }
    }

    /// Short name used in case ids and messages.
    pub fn name(&self) -> String {
        self.id_name().to_string()
    }
}

/// The in-situ attribution rules for the mistral.rs release this suite is built against:
/// the engine's function names (and lines) of each pipeline part (a checkout between 0.8.1
/// and 0.9.2 takes the nearer release's; its line rules are then approximate).
pub fn attribution_rules() -> Result<crate::device::insitu::Rules> {
    #[cfg(not(feature = "engine-0_8_23"))]
    let rules = include_str!("attribution-0.8.1.toml");
    #[cfg(feature = "engine-0_8_23")]
    let rules = include_str!("attribution-0.9.2.toml");
    crate::device::insitu::Rules::parse(rules)
}

/// The engine as recorded in traces: `mistralrs-core <version>`.
pub fn engine_name() -> String {
    format!("mistralrs-core {}", crate::MISTRALRS_VERSION)
}

/// Deadline of one request in seconds (`MISTRALRS_BENCH_REQUEST_TIMEOUT_S`, default 600).
pub const TIMEOUT_ENV: &str = "MISTRALRS_BENCH_REQUEST_TIMEOUT_S";

/// The deadline of every end-to-end request.
pub fn request_timeout() -> Duration {
    let s = std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(600);
    Duration::from_secs(s)
}

static RT: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
});

/// The process-wide tokio runtime the e2e cases and the JSON binary block on.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    &RT
}

/// Resolves a GGUF/local path of `models.toml` (relative to the crate root).
pub fn resolve(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        crate::util::paths::crate_root().join(path)
    }
}

/// The models a preset brings: always its synthetic model; its real model too when the
/// preset names one that is present on disk.
pub fn models_of(p: &Preset, dtype: DType) -> Vec<ModelRef> {
    let mut v = vec![ModelRef::Synthetic {
        preset: p.name.clone(),
        dtype: crate::config::dtype_name(dtype).into(),
    }];
    match &p.source {
        ModelSource::Gguf { path } if resolve(path).exists() => v.push(ModelRef::Gguf {
            path: resolve(path),
        }),
        ModelSource::Local { path } if resolve(path).exists() => v.push(ModelRef::Local {
            path: resolve(path),
        }),
        _ => {}
    }
    v
}

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub device: Device,
    /// In-situ quantization applied at load.
    pub isq: Option<IsqType>,
    /// Paged attention (CUDA and Metal only), with this many tokens of KV cache.
    pub paged_ctx: Option<usize>,
    /// Most sequences the scheduler runs at once.
    pub max_seqs: usize,
    /// Longest context the engine must hold (prompt + generated).
    pub max_seq_len: usize,
    /// The dtype the engine loads the model in; None: the engine's own choice
    /// (`ModelDType::Auto`, which is f16 on a CPU without bf16 matmul).
    pub dtype: Option<DType>,
}

/// A loaded engine.
pub struct Engine {
    pub mistral: Arc<MistralRs>,
    /// The model's tokenizer (the one the engine uses).
    pub tokenizer: Arc<tokenizers::Tokenizer>,
    pub model: ModelRef,
    pub vocab: usize,
    /// The dtype the engine computes in (its metadata's activation dtype).
    pub dtype: DType,
    /// The dtype it was asked to load in (None: `Auto`).
    pub requested_dtype: Option<DType>,
    pub max_seq_len: usize,
    pub load_time: Duration,
    /// Memory in use just before the model was loaded (`device::memory_in_use`).
    pub mem_before_load: Option<u64>,
    /// The first model this process loaded (its memory footprint is clean).
    pub first_model: bool,
}

/// One request's measurements.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    pub prompt_tokens: usize,
    /// Tokens generated: streamed chunks (one per token), or the engine's count.
    pub gen_tokens: usize,
    /// Time from sending the request to the first generated token.
    pub ttft: Duration,
    /// Arrival time of each generated token since the request was sent.
    pub token_times: Vec<Duration>,
    /// Time from sending to the last response.
    pub total: Duration,
    pub text: String,
    /// The engine's own counts (non-streaming requests only).
    #[serde(skip)]
    pub usage: Option<Usage>,
    /// When the request was sent (the origin of `ttft`, `token_times` and `total`).
    #[serde(skip)]
    pub sent: Instant,
}

impl Generation {
    /// Gaps between consecutive tokens.
    pub fn inter_token(&self) -> Vec<Duration> {
        self.token_times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// The timed region of a workload as instants: `[sent, sent + end]`, or for decode the
    /// first to the last streamed token.
    pub fn span(&self, from_first_token: bool, end: Duration) -> (Instant, Instant) {
        let start = match (from_first_token, self.token_times.first()) {
            (true, Some(&t)) => self.sent + t,
            _ => self.sent,
        };
        (start, self.sent + end)
    }

    /// Time spent after the first token (decode of the other `gen_tokens − 1`).
    pub fn decode_time(&self) -> Duration {
        match (self.token_times.first(), self.token_times.last()) {
            (Some(a), Some(b)) => *b - *a,
            _ => Duration::ZERO,
        }
    }
}

/// `n` prompt token ids drawn from `lo..vocab` with a seeded generator.
pub fn prompt_ids(n: usize, lo: u32, vocab: usize, seed: u64) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(lo..vocab as u32)).collect()
}

fn loader_for(model: &ModelRef, preset: Option<&Preset>) -> Result<(Box<dyn Loader>, String)> {
    Ok(match model {
        ModelRef::Synthetic {
            preset: name,
            dtype,
        } => {
            let p = preset.ok_or_else(|| anyhow!("synthetic model `{name}` needs its preset"))?;
            let dt =
                crate::config::parse_dtype(dtype).ok_or_else(|| anyhow!("bad dtype {dtype}"))?;
            let dir = synth::ensure(p, dt)?;
            (normal_loader(&dir)?, dir.display().to_string())
        }
        ModelRef::Local { path } => (normal_loader(path)?, path.display().to_string()),
        ModelRef::Gguf { path } => {
            if !path.is_file() {
                bail!(
                    "GGUF model {} does not exist (run scripts/fetch-models.sh)",
                    path.display()
                );
            }
            let dir = path
                .parent()
                .unwrap_or(Path::new("."))
                .display()
                .to_string();
            let file = path
                .file_name()
                .ok_or_else(|| anyhow!("bad GGUF path"))?
                .to_string_lossy()
                .to_string();
            let loader = GGUFLoaderBuilder::new(
                None,
                None,
                dir.clone(),
                vec![file],
                GGUFSpecificConfig::default(),
                false,
                None,
            )
            .build();
            (loader, path.display().to_string())
        }
    })
}

fn normal_loader(dir: &Path) -> Result<Box<dyn Loader>> {
    if !dir.join("config.json").is_file() {
        bail!(
            "{} is not a model directory (no config.json)",
            dir.display()
        );
    }
    let cfg = NormalSpecificConfig {
        topology: None,
        organization: Default::default(),
        write_uqff: None,
        from_uqff: None,
        imatrix: None,
        calibration_file: None,
        hf_cache_path: None,
        matformer_config_path: None,
        matformer_slice_name: None,
    };
    NormalLoaderBuilder::new(
        cfg,
        None,
        None,
        Some(dir.display().to_string()),
        false,
        None,
    )
    .build(Some(NormalLoaderType::Llama))
    .context("cannot build the model loader")
}

impl Engine {
    /// Loads `model` (a synthetic one is written first if needed) and starts the engine.
    pub async fn load(
        model: &ModelRef,
        preset: Option<&Preset>,
        opts: &EngineOptions,
    ) -> Result<Engine> {
        // Everything is local: never reach for a model hub.
        std::env::set_var("HF_HUB_OFFLINE", "1");
        // The engine's own log (tracing) when asked for, e.g. RUST_LOG=warn.
        if std::env::var_os("RUST_LOG").is_some() {
            mistralrs_core::initialize_logging();
        }
        let mem_before_load = crate::device::memory_in_use(&opts.device);
        let first_model = crate::device::memory::note_model_load();
        let t0 = Instant::now();
        let (loader, _where) = loader_for(model, preset)?;
        let paged = match opts.paged_ctx {
            Some(ctx) if opts.device.is_cuda() || opts.device.is_metal() => {
                Some(PagedAttentionConfig::new(
                    Some(32),
                    MemoryGpuConfig::ContextSize(ctx),
                    PagedCacheType::Auto,
                )?)
            }
            Some(_) => bail!("paged attention needs a CUDA or Metal device"),
            None => None,
        };
        let mapper = DeviceMapSetting::Auto(AutoDeviceMapParams::Text {
            max_seq_len: opts.max_seq_len,
            max_batch_size: opts.max_seqs,
        });
        let model_dtype = match opts.dtype {
            None => ModelDType::Auto,
            Some(DType::F32) => ModelDType::F32,
            Some(DType::F16) => ModelDType::F16,
            Some(DType::BF16) => ModelDType::BF16,
            Some(other) => bail!("the engine cannot load a model in {other:?}"),
        };
        let pipeline = loader
            .load_model_from_hf(
                None,
                TokenSource::None,
                &model_dtype,
                &opts.device,
                true,
                mapper,
                opts.isq,
                paged,
            )
            .with_context(|| format!("mistral.rs could not load {}", model.name()))?;
        let (tokenizer, dtype, max_seq_len, cache_config) = {
            let p = pipeline.lock().await;
            let md = p.get_metadata();
            let tok = p
                .tokenizer()
                .ok_or_else(|| anyhow!("the model has no tokenizer"))?;
            (
                tok,
                md.activation_dtype,
                md.max_seq_len,
                md.cache_config.clone(),
            )
        };
        let vocab = tokenizer.get_vocab_size(true);
        let scheduler = match (paged.is_some(), cache_config) {
            (true, Some(config)) => SchedulerConfig::PagedAttentionMeta {
                max_num_seqs: opts.max_seqs,
                config,
            },
            _ => SchedulerConfig::DefaultScheduler {
                method: DefaultSchedulerMethod::Fixed(
                    NonZeroUsize::new(opts.max_seqs.max(1)).expect("max(1)"),
                ),
            },
        };
        let mistral = MistralRsBuilder::new(pipeline, scheduler, false, None)
            .with_no_prefix_cache(true)
            .with_disable_eos_stop(true)
            .build()
            .await;
        Ok(Engine {
            mistral,
            tokenizer,
            model: model.clone(),
            vocab,
            dtype,
            requested_dtype: opts.dtype,
            max_seq_len,
            load_time: t0.elapsed(),
            mem_before_load,
            first_model,
        })
    }

    /// Token ids of `text` under the model's tokenizer (special tokens added as configured).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| anyhow!("cannot tokenize the prompt: {e}"))?;
        let ids = enc.get_ids().to_vec();
        if ids.is_empty() {
            bail!("the prompt has no tokens");
        }
        Ok(ids)
    }

    /// Sends one request and waits for it, at most `deadline`. Prompt ids are checked
    /// against the vocabulary first (an out-of-range id trips a device-side assert on CUDA
    /// that leaves the engine hung).
    pub async fn generate(
        &self,
        prompt: Vec<u32>,
        max_tokens: usize,
        stream: bool,
        deadline: Duration,
    ) -> Result<Generation> {
        if prompt.is_empty() {
            bail!("empty prompt");
        }
        if let Some(bad) = prompt.iter().find(|&&t| t as usize >= self.vocab) {
            bail!(
                "token id {bad} is outside the vocabulary (size {})",
                self.vocab
            );
        }
        if max_tokens == 0 {
            bail!("max_tokens must be at least 1");
        }
        if prompt.len() + max_tokens > self.max_seq_len {
            bail!(
                "prompt ({}) + max_tokens ({max_tokens}) exceed the model's context of {}",
                prompt.len(),
                self.max_seq_len
            );
        }
        let prompt_tokens = prompt.len();
        let (tx, mut rx) = channel(10_000);
        let sampling = SamplingParams {
            max_len: Some(max_tokens),
            ..SamplingParams::deterministic()
        };
        // `new_simple` (no tools, no constraint, no logprobs) exists in 0.8.1 and 0.9, whose
        // request has grown agent and file fields.
        let mut req = NormalRequest::new_simple(
            RequestMessage::CompletionTokens(prompt),
            sampling,
            tx,
            self.mistral.next_request_id(),
            None,
            None,
        );
        req.is_streaming = stream;
        let sender = self
            .mistral
            .get_sender(None)
            .map_err(|e| anyhow!("engine: {e}"))?;
        let start = Instant::now();
        sender
            .send(Request::Normal(Box::new(req)))
            .await
            .map_err(|_| anyhow!("the engine has stopped"))?;
        let mut g = Generation {
            prompt_tokens,
            gen_tokens: 0,
            ttft: Duration::ZERO,
            token_times: Vec::with_capacity(max_tokens),
            total: Duration::ZERO,
            text: String::new(),
            usage: None,
            sent: start,
        };
        loop {
            let left = deadline
                .checked_sub(start.elapsed())
                .unwrap_or(Duration::ZERO);
            let resp = match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(r)) => r,
                // mistralrs-core 0.8.1 streams no chunk for a token whose bytes end inside a
                // UTF-8 character, and none at all, not even the last, when the final token
                // does (`Sequence::peek_delta`, sequence.rs:1017-1032, and its caller in
                // pipeline/sampling.rs): the request's channel then closes unanswered
                Ok(None) if stream => bail!(
                    "the engine dropped the request after {} streamed chunks (mistral.rs sends \
                     none for a last token that ends inside a UTF-8 character)",
                    g.gen_tokens
                ),
                Ok(None) => bail!("the engine dropped the request"),
                Err(_) => bail!(
                    "request timed out after {:.1} s ({} of {max_tokens} tokens); the engine may be hung",
                    deadline.as_secs_f64(),
                    g.gen_tokens
                ),
            };
            let now = start.elapsed();
            match resp {
                Response::CompletionChunk(c) => {
                    g.token_times.push(now);
                    g.gen_tokens += 1;
                    let mut done = false;
                    for ch in &c.choices {
                        g.text.push_str(&ch.text);
                        done |= ch.finish_reason.is_some();
                    }
                    if done {
                        break;
                    }
                }
                Response::CompletionDone(r) => {
                    if let Some(ch) = r.choices.first() {
                        g.text = ch.text.clone();
                    }
                    g.gen_tokens = r.usage.completion_tokens;
                    g.usage = Some(r.usage);
                    g.token_times.push(now);
                    break;
                }
                Response::InternalError(e) | Response::ValidationError(e) => {
                    bail!("engine error: {e}")
                }
                Response::CompletionModelError(e, _) | Response::ModelError(e, _) => {
                    bail!("model error: {e}")
                }
                _ => bail!("unexpected response from the engine"),
            }
        }
        g.total = start.elapsed();
        g.ttft = g.token_times.first().copied().unwrap_or(g.total);
        Ok(g)
    }

    /// Runs `n` requests at once (each its own prompt); returns them when all are done.
    /// `stream`: token by token (per-token times), else one response per request, whose token
    /// count is the engine's own (`usage`), not a count of chunks.
    pub async fn generate_concurrent(
        &self,
        prompts: Vec<Vec<u32>>,
        max_tokens: usize,
        stream: bool,
        deadline: Duration,
    ) -> Result<Vec<Generation>> {
        let futs = prompts
            .into_iter()
            .map(|p| self.generate(p, max_tokens, stream, deadline));
        futures::future::join_all(futs).await.into_iter().collect()
    }
}
