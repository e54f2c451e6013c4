//! The rules that map an engine stack to a pipeline part: one TOML table per mistral.rs
//! release, keyed by the engine's own function names (and, where one function holds two
//! parts, by its source lines). The tables live with the engine
//! (`crate::engine::attribution_rules`, `src/engine/attribution-<version>.toml`).

use super::sampler::Frame;
use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// A part of the pipeline the engine's time is split into.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Part {
    /// SDPA and its backends (the CPU kernel, paged attention, flash attention).
    Attention,
    /// The Q, K, V and O projections.
    QkvoProj,
    FfnGateUp,
    FfnAct,
    FfnDown,
    Rmsnorm,
    Rope,
    /// Appending to the KV cache.
    KvWrite,
    Embedding,
    LmHead,
    /// The rest of a forward pass: residual adds, reshapes, masks, casts.
    ModelOther,
    Sampling,
    /// The engine's host side: scheduler, inputs, responses, tokenizer, the request path.
    HostEngine,
    /// Copies between host and device memory (and between devices).
    Copies,
    /// The engine thread blocked with nothing to do.
    Idle,
    /// No kernel or copy on the device while the host was not in sampling or the engine's
    /// own work (launch gaps, synchronisations): measured from the device's timeline.
    DeviceIdle,
    /// Matched no rule.
    Unassigned,
}

impl Part {
    /// Parts that are work of a forward pass or of the engine (not idle, not unassigned).
    pub fn is_work(self) -> bool {
        !matches!(self, Part::Idle | Part::DeviceIdle | Part::Unassigned)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    engine: String,
    threads: ThreadsFile,
    rule: Vec<RuleFile>,
    #[serde(default)]
    gpu: Option<GpuFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GpuFile {
    kernel: Vec<KernelRuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThreadsFile {
    engine: String,
    pool: String,
    /// Pool threads known by their name (`/proc/<pid>/task/<tid>/comm`) rather than a frame:
    /// candle 0.11's barrier pool runs its workers in one closure of `utils.rs` whose frames
    /// a kernel's own stack need not show.
    #[serde(default)]
    pool_names: Option<String>,
    wait: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    part: Part,
    frame: String,
    #[serde(default)]
    lines: Option<[u32; 2]>,
    #[serde(default)]
    inner: Option<String>,
    #[serde(default)]
    outer: Option<String>,
}

struct Rule {
    part: Part,
    frame: Regex,
    lines: Option<[u32; 2]>,
    inner: Option<Regex>,
    outer: Option<Regex>,
}

/// What one stack says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    pub part: Part,
    /// The stack is a pool thread's (rayon worker).
    pub pool: bool,
    /// The stack holds the engine loop.
    pub engine: bool,
    /// The thread is blocked (a wait function is on the stack).
    pub waiting: bool,
}

/// A compiled rule set.
pub struct Rules {
    /// The engine release the rules were written for.
    pub engine: String,
    engine_thread: Regex,
    pool: Regex,
    pool_names: Option<Regex>,
    wait: Regex,
    rules: Vec<Rule>,
    /// Kernel-name rules for the device timeline (empty: the table has no `[gpu]`).
    pub gpu: GpuRules,
}

fn re(s: &str) -> Result<Regex> {
    Regex::new(s).with_context(|| format!("bad rule regex `{s}`"))
}

impl Rules {
    /// Parses and compiles a rules table.
    pub fn parse(text: &str) -> Result<Rules> {
        let f: RulesFile = toml::from_str(text).context("parsing the attribution rules")?;
        if f.rule.is_empty() {
            bail!("the attribution rules have no [[rule]]");
        }
        Ok(Rules {
            engine: f.engine,
            engine_thread: re(&f.threads.engine)?,
            pool: re(&f.threads.pool)?,
            pool_names: f.threads.pool_names.as_deref().map(re).transpose()?,
            wait: re(&f.threads.wait)?,
            rules: f
                .rule
                .into_iter()
                .map(|r| {
                    Ok(Rule {
                        part: r.part,
                        frame: re(&r.frame)?,
                        lines: r.lines,
                        inner: r.inner.as_deref().map(re).transpose()?,
                        outer: r.outer.as_deref().map(re).transpose()?,
                    })
                })
                .collect::<Result<_>>()?,
            gpu: GpuRules::compile(f.gpu.map(|g| g.kernel).unwrap_or_default())?,
        })
    }

    /// Classifies one stack (innermost frame first).
    pub fn classify(&self, stack: &[Frame]) -> Class {
        let keys: Vec<String> = stack.iter().map(key).collect();
        let any = |r: &Regex| keys.iter().any(|k| r.is_match(k));
        let part = self
            .rules
            .iter()
            .find(|r| matches(r, stack, &keys))
            .map(|r| r.part);
        let waiting = any(&self.wait);
        Class {
            part: part.unwrap_or(if waiting {
                Part::Idle
            } else {
                Part::Unassigned
            }),
            pool: any(&self.pool),
            engine: any(&self.engine_thread),
            waiting,
        }
    }

    /// Whether a thread of this name is a pool worker (the table's `pool_names`).
    pub fn is_pool_thread(&self, name: &str) -> bool {
        self.pool_names.as_ref().is_some_and(|r| r.is_match(name))
    }
}

/// What a rule's regexes match: `FILE FUNCTION` (the file empty when unknown).
pub fn key(f: &Frame) -> String {
    format!("{} {}", f.file.as_deref().unwrap_or(""), f.func)
}

fn matches(r: &Rule, stack: &[Frame], keys: &[String]) -> bool {
    keys.iter().enumerate().any(|(i, k)| {
        r.frame.is_match(k)
            && r.lines
                .is_none_or(|[lo, hi]| stack[i].line.is_some_and(|l| (lo..=hi).contains(&l)))
            && r.inner
                .as_ref()
                .is_none_or(|x| keys[..i].iter().any(|g| x.is_match(g)))
            && r.outer
                .as_ref()
                .is_none_or(|x| keys[i + 1..].iter().any(|g| x.is_match(g)))
    })
}

/// How a kernel name places the kernel in the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Starts a block (RMSNorm).
    Norm,
    Rope,
    /// The attention's softmax (GEMMs after it, as many as before it, are the attention's).
    Softmax,
    /// A fused attention kernel (paged attention, flash attention).
    Attention,
    /// The FFN's activation (SiLU, a fused gate): GEMMs before it are gate/up.
    Activation,
    /// The FFN's gate/up matrix multiply fused with its activation (mistralrs-quant 0.9's
    /// `mmvq_gguf_*_fused_glu`): gate/up's time; GEMMs after it are the down projection.
    GemmActivation,
    /// A matrix multiply, placed by its position.
    Gemm,
    /// The quantization of a quantized matmul's input (`quantize_q8_1`), launched right
    /// before it: the part of the next GEMM in its block.
    GemmInput,
    /// A KV-cache write kernel.
    KvWrite,
    /// Its part is its name's (embedding, casts, elementwise ops).
    Named,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KernelRuleFile {
    name: String,
    role: Role,
    #[serde(default)]
    part: Option<Part>,
}

struct KernelRule {
    name: Regex,
    role: Role,
    part: Option<Part>,
}

/// The kernel-name rules of one engine release (the `[[gpu.kernel]]` entries).
pub struct GpuRules {
    rules: Vec<KernelRule>,
}

impl GpuRules {
    fn compile(files: Vec<KernelRuleFile>) -> Result<GpuRules> {
        let rules = files
            .into_iter()
            .map(|r| {
                Ok(KernelRule {
                    name: Regex::new(&r.name)
                        .with_context(|| format!("bad kernel rule regex `{}`", r.name))?,
                    role: r.role,
                    part: r.part,
                })
            })
            .collect::<Result<_>>()?;
        Ok(GpuRules { rules })
    }

    /// The role and fixed part (if the rule gives one) of a kernel name; unmatched: Named
    /// without a part.
    pub fn kernel(&self, name: &str) -> (Role, Option<Part>) {
        self.rules
            .iter()
            .find(|r| r.name.is_match(name))
            .map(|r| (r.role, r.part))
            .unwrap_or((Role::Named, None))
    }
}
