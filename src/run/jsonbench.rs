//! The `mistral-rs-bench` JSON protocol: one request document on stdin, one result document
//! on stdout. Errors are values ([`BenchError`], with a stable `kind`); `main.rs` prints
//! them and sets the exit code. Field names follow llama-bench's JSON where one exists (`n_prompt`, `n_gen`,
//! `avg_ts`, `stddev_ts`, ...).

use crate::config::Models;
use crate::device::{self, insitu, memory::PeakMem};
use crate::engine::{request_timeout, runtime, Engine, EngineOptions, Generation, ModelRef};
use crate::util::{paths::crate_root, stats::Summary};
use anyhow::{anyhow, bail, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Largest accepted `iterations`, `warmup`, `max_tokens` and `concurrency`.
pub const MAX_ITERATIONS: u32 = 10_000;
pub const MAX_WARMUP: u32 = 1_000;
pub const MAX_TOKENS: usize = 131_072;
pub const MAX_CONCURRENCY: usize = 1_024;

/// The request, as read from stdin. Unknown fields are errors.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BenchRequest {
    /// Prompt text, tokenized with the model's tokenizer.
    pub prompt: String,
    /// Measured iterations (each: `concurrency` requests at once).
    #[serde(default = "default_iterations")]
    pub iterations: u32,
    /// A `models.toml` preset (its synthetic model), a `.gguf` file, or a model directory.
    #[serde(default = "default_model")]
    pub model: String,
    /// Tokens generated per request (EOS is ignored).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// Untimed iterations before the measured ones.
    #[serde(default = "default_warmup")]
    pub warmup: u32,
    /// `cpu`, `cuda[:N]`, `metal[:N]`; default: the build's GPU, else the CPU.
    #[serde(default)]
    pub device: Option<String>,
    /// In-situ quantization applied at load (e.g. `q4k`, `q8_0`, `4`, `8`).
    #[serde(default)]
    pub isq: Option<String>,
    /// Simultaneous requests per iteration.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// The dtype the engine loads the model in (`f32`, `f16`, `bf16`); default: the
    /// engine's own choice (`auto`: f16 on a CPU, the model's dtype on a GPU).
    #[serde(default)]
    pub dtype: Option<String>,
    /// Seed of the device RNG (decoding is greedy, so results do not depend on it).
    #[serde(default)]
    pub seed: u64,
    /// After the measured iterations, run up to 3 more under the in-situ sampler and split
    /// prefill and decode (or, with concurrency, the whole iteration) by pipeline part.
    #[serde(default)]
    pub insitu: bool,
}

fn default_iterations() -> u32 {
    10
}
fn default_model() -> String {
    "smollm2-135m".into()
}
fn default_max_tokens() -> usize {
    32
}
fn default_warmup() -> u32 {
    1
}
fn default_concurrency() -> usize {
    1
}

/// A classified error: `kind` is stable for scripts; `message` is for people.
#[derive(Debug, Serialize)]
pub struct ErrorDoc {
    pub kind: &'static str,
    pub message: String,
}

#[derive(Debug)]
pub struct BenchError {
    pub kind: &'static str,
    pub err: anyhow::Error,
}

impl BenchError {
    fn new(kind: &'static str, err: anyhow::Error) -> Self {
        Self { kind, err }
    }
    pub fn doc(&self) -> serde_json::Value {
        serde_json::json!({ "error": ErrorDoc { kind: self.kind, message: format!("{:#}", self.err) } })
    }
}

/// Parses and validates a request document.
pub fn parse_request(text: &str) -> std::result::Result<BenchRequest, BenchError> {
    let req: BenchRequest = serde_json::from_str(text).map_err(|e| {
        let kind = if e.is_syntax() || e.is_eof() {
            "invalid_json"
        } else {
            "invalid_request"
        };
        BenchError::new(kind, anyhow!("{e}"))
    })?;
    let bad = |m: String| Err(BenchError::new("invalid_request", anyhow!(m)));
    if req.iterations == 0 || req.iterations > MAX_ITERATIONS {
        return bad(format!(
            "`iterations` must be between 1 and {MAX_ITERATIONS}, got {}",
            req.iterations
        ));
    }
    if req.warmup > MAX_WARMUP {
        return bad(format!(
            "`warmup` must be at most {MAX_WARMUP}, got {}",
            req.warmup
        ));
    }
    if req.max_tokens == 0 || req.max_tokens > MAX_TOKENS {
        return bad(format!(
            "`max_tokens` must be between 1 and {MAX_TOKENS}, got {}",
            req.max_tokens
        ));
    }
    if req.concurrency == 0 || req.concurrency > MAX_CONCURRENCY {
        return bad(format!(
            "`concurrency` must be between 1 and {MAX_CONCURRENCY}, got {}",
            req.concurrency
        ));
    }
    if req.prompt.trim().is_empty() {
        return bad("`prompt` must not be empty".into());
    }
    if let Some(d) = &req.dtype {
        if d != "auto" && crate::config::parse_dtype(d).is_none() {
            return bad(format!(
                "`dtype` must be one of auto, f32, f16, bf16, got `{d}`"
            ));
        }
    }
    Ok(req)
}

/// One measured iteration.
#[derive(Debug, Serialize)]
pub struct Sample {
    pub iteration: u32,
    /// Prompt tokens of each request.
    pub n_prompt: usize,
    /// Tokens generated, all requests together.
    pub n_gen: usize,
    /// Wall time of the iteration (all requests), ms.
    pub latency_ms: f64,
    /// Time to first token of each request, ms.
    pub ttft_ms: Vec<f64>,
    /// Prompt tokens/s of each request (n_prompt / ttft).
    pub prefill_ts: Vec<f64>,
    /// Decode tokens/s of each request ((tokens − 1) / time after the first token).
    pub decode_ts: Vec<f64>,
    /// Generated tokens/s of the whole iteration (n_gen / latency).
    pub total_ts: f64,
}

/// Runs the benchmark a request describes; returns the result document.
pub fn run(req: &BenchRequest) -> std::result::Result<serde_json::Value, BenchError> {
    let dev = match &req.device {
        Some(d) => device::parse_device(d),
        None => device::from_env(),
    }
    .map_err(|e| BenchError::new("invalid_device", e))?;
    let (model, preset) =
        resolve_model(&req.model).map_err(|e| BenchError::new("model_not_found", e))?;
    let isq = match &req.isq {
        Some(s) => Some(
            mistralrs_core::parse_isq_value(s, Some(&dev))
                .map_err(|e| BenchError::new("invalid_request", anyhow!("`isq`: {e}")))?,
        ),
        None => None,
    };
    let _ = dev.set_seed(req.seed);
    let need = req.max_tokens + 4096.min(req.prompt.len() + 64);
    let opts = EngineOptions {
        device: dev.clone(),
        isq,
        // The paged KV cache holds every request's context at once, with room to spare.
        paged_ctx: (!dev.is_cpu()).then_some((need * req.concurrency).max(8192)),
        max_seqs: req.concurrency,
        max_seq_len: preset
            .as_ref()
            .map(|p| need.min(p.max_context))
            .unwrap_or(need),
        dtype: req.dtype.as_deref().and_then(crate::config::parse_dtype),
    };
    let rt = runtime();
    // The one memory sampler, on a GPU only (the CPU's figure is the process's VmHWM), from
    // before the model loads, so its peak includes the weights.
    let mem = (!dev.is_cpu()).then(|| PeakMem::start(&dev, None, false));
    let engine = rt
        .block_on(Engine::load(&model, preset.as_ref(), &opts))
        .map_err(|e| BenchError::new("load_failed", e))?;
    let prompt = engine
        .tokenize(&req.prompt)
        .map_err(|e| BenchError::new("invalid_request", e))?;
    let deadline = request_timeout();
    let go = |req: &BenchRequest| -> Result<(Vec<Generation>, Duration)> {
        let t = Instant::now();
        let prompts = vec![prompt.clone(); req.concurrency];
        // streamed: the binary reports TTFT and inter-token latency
        let gens =
            rt.block_on(engine.generate_concurrent(prompts, req.max_tokens, true, deadline))?;
        Ok((gens, t.elapsed()))
    };
    for _ in 0..req.warmup {
        go(req).map_err(|e| BenchError::new("generation_failed", e))?;
    }
    let mut samples = Vec::new();
    let mut itl = Vec::new();
    let mut last_text = String::new();
    for i in 0..req.iterations {
        let (gens, wall) = go(req).map_err(|e| BenchError::new("generation_failed", e))?;
        let n_gen: usize = gens.iter().map(|g| g.gen_tokens).sum();
        if gens.iter().any(|g| g.gen_tokens != req.max_tokens) {
            return Err(BenchError::new(
                "generation_failed",
                anyhow!(
                    "the engine generated {n_gen} tokens, expected {} per request",
                    req.max_tokens
                ),
            ));
        }
        for g in &gens {
            itl.extend(g.inter_token().iter().map(|d| d.as_secs_f64() * 1e3));
        }
        last_text = gens.first().map(|g| g.text.clone()).unwrap_or_default();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        samples.push(Sample {
            iteration: i,
            n_prompt: prompt.len(),
            n_gen,
            latency_ms: ms(wall),
            ttft_ms: gens.iter().map(|g| ms(g.ttft)).collect(),
            prefill_ts: gens
                .iter()
                .map(|g| g.prompt_tokens as f64 / g.ttft.as_secs_f64())
                .collect(),
            decode_ts: gens
                .iter()
                .filter(|g| g.gen_tokens > 1)
                .map(|g| (g.gen_tokens - 1) as f64 / g.decode_time().as_secs_f64())
                .collect(),
            total_ts: n_gen as f64 / wall.as_secs_f64(),
        });
    }
    let insitu = if req.insitu {
        Some(
            attribute_run(req, &go, dev.is_cuda())
                .map_err(|e| BenchError::new("generation_failed", e))?,
        )
    } else {
        None
    };
    let peak_device = mem.as_ref().and_then(PeakMem::peak_bytes);
    drop(mem);
    let flat = |f: fn(&Sample) -> &Vec<f64>| -> Vec<f64> {
        samples.iter().flat_map(|s| f(s).iter().copied()).collect()
    };
    let latency = Summary::of(&samples.iter().map(|s| s.latency_ms).collect::<Vec<_>>());
    let ttft = Summary::of(&flat(|s| &s.ttft_ms));
    let prefill = Summary::of(&flat(|s| &s.prefill_ts));
    let decode = Summary::of(&flat(|s| &s.decode_ts));
    let total = Summary::of(&samples.iter().map(|s| s.total_ts).collect::<Vec<_>>());
    let itl = Summary::of(&itl);
    let (card, driver) = gpu_info(&dev);
    Ok(serde_json::json!({
        "request": req,
        "environment": {
            "device": device::label(&dev),
            "device_name": device::describe(&dev),
            "gpu_name": card,
            "driver": driver,
            "cuda_version": cuda_version(&dev),
            "dtype": crate::config::dtype_name(engine.dtype),
            "requested_dtype": req.dtype.as_deref().unwrap_or("auto"),
            "model": engine.model.name(),
            "model_ref": engine.model,
            "quantization": quantization(&engine.model, isq),
            "mistralrs_version": crate::MISTRALRS_VERSION,
            "crate_version": env!("CARGO_PKG_VERSION"),
            "git_commit": env!("MISTRAL_RS_BENCH_GIT_COMMIT"),
            "build": crate::util::build::BuildInfo::current(),
            "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "load_s": engine.load_time.as_secs_f64(),
        },
        "samples": samples,
        "summary": {
            "n_prompt": prompt.len(),
            "n_gen": req.max_tokens,
            "concurrency": req.concurrency,
            "latency_ms": latency,
            "ttft_ms": ttft,
            "itl_ms": itl,
            "prefill_ts": prefill,
            "decode_ts": decode,
            "total_ts": total,
            "avg_ts": decode.mean,
            "stddev_ts": decode.stddev,
            "peak_rss_bytes": device::memory::peak_rss(),
            "peak_device_memory_bytes": peak_device,
            "completion_text": last_text,
        },
        "insitu": insitu,
    }))
}

/// One iteration of a request: its generations and its wall time.
type Iteration<'a> = dyn Fn(&BenchRequest) -> Result<(Vec<Generation>, Duration)> + 'a;

/// Iterations of the in-situ pass of the JSON binary.
pub const INSITU_ITERATIONS: u32 = 3;

/// Runs `min(iterations, 3)` more iterations under the in-situ sampler, alternated in ABBA
/// order with as many with the sampler paused (their time per unit is each breakdown's time
/// without attribution), and splits the attributed ones by part: `prefill` (send to first
/// token) and `decode` (first to last token) for one request at a time, `iteration` (the
/// whole wall time) with concurrency.
fn attribute_run(req: &BenchRequest, go: &Iteration, cuda: bool) -> Result<serde_json::Value> {
    let rules = crate::engine::attribution_rules()?;
    let n = req.iterations.min(INSITU_ITERATIONS);
    let mut session = insitu::Session::start(&crate::engine::engine_name(), cuda)?;
    // Per side (0: without, 1: with): [prefill, decode, iteration] as (ms, units).
    let mut sums = [[(0f64, 0u64); 3]; 2];
    for i in 0..2 * n {
        let with = session.abba(i as usize)?;
        let t = Instant::now();
        let (gens, wall) = go(req)?;
        let side = &mut sums[with as usize];
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        for g in &gens {
            side[0].0 += ms(g.ttft);
            side[0].1 += g.prompt_tokens as u64;
            side[1].0 += ms(g.decode_time());
            side[1].1 += g.gen_tokens.saturating_sub(1) as u64;
            side[2].1 += g.gen_tokens as u64;
            if with && req.concurrency == 1 {
                let first = g.sent + g.ttft;
                session.window("prefill", g.sent, first, g.prompt_tokens as u64);
                if let Some(&last) = g.token_times.last() {
                    session.window(
                        "decode",
                        first,
                        g.sent + last,
                        g.gen_tokens.saturating_sub(1) as u64,
                    );
                }
            }
        }
        side[2].0 += ms(wall);
        if with && req.concurrency > 1 {
            let tokens = gens.iter().map(|g| g.gen_tokens as u64).sum();
            session.window("iteration", t, t + wall, tokens);
        }
    }
    let trace = session.finish()?;
    if let Some(dir) = std::env::var_os(insitu::DUMP_ENV) {
        let name = req.model.replace(['/', '.'], "_");
        crate::util::json::write_compact(
            &std::path::Path::new(&dir).join(format!("json-{name}.json")),
            &trace,
        )?;
    }
    let phases: &[(usize, &str)] = if req.concurrency == 1 {
        &[(0, "prefill"), (1, "decode")]
    } else {
        &[(2, "iteration")]
    };
    let mut out = serde_json::Map::new();
    for &(k, phase) in phases {
        let units = sums[1][k].1;
        if units == 0 {
            continue;
        }
        let mut b = insitu::attribute(&trace, Some(phase), &rules, "token", units)?;
        let (ms, u) = sums[0][k];
        b.set_without(ms / u.max(1) as f64);
        out.insert(phase.into(), serde_json::to_value(b)?);
    }
    Ok(serde_json::Value::Object(out))
}

fn quantization(model: &ModelRef, isq: Option<mistralrs_core::IsqType>) -> String {
    match (model, isq) {
        (_, Some(q)) => format!("isq:{q:?}"),
        (ModelRef::Gguf { path }, None) => format!("gguf:{}", path.display()),
        _ => "none".into(),
    }
}

/// A preset name (its synthetic model), a `.gguf` file, or a model directory.
pub fn resolve_model(name: &str) -> Result<(ModelRef, Option<crate::config::Preset>)> {
    let models = Models::load_default()?;
    if let Some(p) = models.presets.get(name) {
        let model = ModelRef::Synthetic {
            preset: p.name.clone(),
            dtype: p.dtype.clone(),
        };
        return Ok((model, Some(p.clone())));
    }
    let path = PathBuf::from(name);
    let path = if path.exists() {
        path
    } else {
        crate_root().join(name)
    };
    if name.ends_with(".gguf") {
        if !path.is_file() {
            bail!("model file `{name}` does not exist (scripts/fetch-models.sh fetches SmolLM2)");
        }
        return Ok((ModelRef::Gguf { path }, None));
    }
    if path.is_dir() {
        return Ok((ModelRef::Local { path }, None));
    }
    bail!(
        "model `{name}` is neither a preset of {} ({}), nor a .gguf file, nor a model directory",
        models.file.display(),
        models
            .presets
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn gpu_info(dev: &Device) -> (Option<String>, Option<String>) {
    match device::gpu_name(dev) {
        Some(s) => match s.split_once(',') {
            Some((n, d)) => (Some(n.trim().to_string()), Some(d.trim().to_string())),
            None => (Some(s), None),
        },
        None => (None, None),
    }
}

fn cuda_version(dev: &Device) -> Option<String> {
    if !dev.is_cuda() {
        return None;
    }
    let out = std::process::Command::new("nvidia-smi").output().ok()?;
    let s = String::from_utf8_lossy(&out.stdout);
    let i = s.find("CUDA Version:")?;
    Some(s[i + 13..].split_whitespace().next()?.to_string())
}

/// `--help` text describing the protocol.
pub const PROTOCOL_HELP: &str = r#"With no subcommand, reads one JSON request on stdin and prints one JSON result on stdout:

  echo '{"prompt":"Hello","iterations":50}' | mistral-rs-bench

Request fields (unknown fields are errors):
  prompt        string, required   prompt text (tokenized by the model's tokenizer)
  iterations    int, default 10    measured iterations, 1..=10000
  model         string, default "smollm2-135m"
                                   a models.toml preset (its synthetic model, written once
                                   under target/), a .gguf file, or a model directory
  max_tokens    int, default 32    tokens generated per request (EOS ignored), 1..=131072
  warmup        int, default 1     untimed iterations first, 0..=1000
  device        string             cpu | cuda[:N] | metal[:N] (default: GPU of the build, else cpu)
  isq           string             in-situ quantization at load: q4k, q8_0, hqq4, 4, 8, ...
  concurrency   int, default 1     simultaneous requests per iteration, 1..=1024
  seed          int, default 0     device RNG seed (decoding is greedy)
  dtype         string             the dtype the engine loads the model in: auto (default:
                                   the engine's choice, f16 on a CPU), f32, f16 or bf16
  insitu        bool, default false  then up to 3 more iterations under the in-situ sampler,
                                   alternated with as many without it (Linux; on CUDA the
                                   build needs the cupti feature): "insitu" in the result
                                   splits prefill and decode (with concurrency: the
                                   iteration) by pipeline part

Result: {"request": (with defaults), "environment": {device, device_name, gpu_name,
driver, cuda_version, dtype, model, quantization, mistralrs_version, crate_version,
git_commit, ...}, "samples": [per iteration: n_prompt, n_gen, latency_ms, ttft_ms[],
prefill_ts[], decode_ts[], total_ts], "summary": {n_prompt, n_gen, latency_ms, ttft_ms,
itl_ms, prefill_ts, decode_ts, total_ts (each {n, mean, stddev, cv, min, p50, p90, p99,
max}), avg_ts and stddev_ts (decode tokens/s, as llama-bench's), peak_rss_bytes,
peak_device_memory_bytes, completion_text (the last iteration's first completion)},
"insitu": null or {prefill, decode | iteration: {parts: [{part, wall_s, wall_share,
per_unit_ms, cpu_s, cpu_share}], per_unit_ms, without_ms, overhead_pct, coverage,
unassigned_wall, unassigned_cpu, ...}}}. Times are measured with Instant; ms and tokens/s.

Bad input (not JSON, unknown field, wrong type, out-of-range numbers, missing model,
unknown device) prints {"error": {"kind", "message"}} on stdout, the message on stderr,
and exits with code 2."#;
