//! Typed case ids. Every case of the suite is a [`CaseId`]: its group (the pipeline part),
//! its subject (a preset of `models.toml`, or a model for end-to-end cases) and what it runs,
//! with typed fields (phase, path, policy, format, size, ...). `Display` writes the id
//! Criterion and the baselines know (`attention/smollm2-135m/decode/naive/ctx512`);
//! `FromStr` reads it back. **This is the only place that parses ids**: the summary, the
//! budget, the peers report and `compare` ask a [`CaseId`] for its fields.
//!
//! The grammar, one line per group:
//!
//! ```text
//! attention/<preset>/<prefill|decode>/<path>/ctx<N>
//! ffn/<preset>/<class>/<format>/<prefill|decode>/t<N>
//! kv_cache/<preset>/<policy>/len<N>
//! quant_matmul/<preset>/<class>/<format>/<proj>/m<N>
//! small_ops/<preset>/{rmsnorm,rope,embedding,lm_head}/t<N> | small_ops/<preset>/sampling/<method>
//! generation/<model>/{prefill/pp<N>, decode/tg<N>/depth<D>, ttft/pp<N>, concurrent/c<N>}
//! peers/<engine>/<preset>/{attention/<phase>/ctx<N>, ffn/<phase>/t<N>, <small op>}
//! peers/<engine>/<model>/<workload as in generation>
//! ```
//!
//! A new part adds a [`Group`] variant and a [`Case`] variant here; the compiler then points
//! at every match that must learn it.

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use strum::{Display, EnumIter, EnumString, IntoStaticStr};

/// Derives of every closed set: names as in case ids (`snake_case`), in serde and strum alike.
macro_rules! closed_set {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            Display, EnumString, EnumIter, IntoStaticStr,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v),+ }
    };
}

closed_set! {
    /// The Criterion group of a case: one per pipeline part, plus the peers.
    pub enum Group { Attention, Ffn, KvCache, QuantMatmul, SmallOps, Generation, Peers }
}

closed_set! {
    /// Prefill (many query rows) or decode (one).
    pub enum Phase { Prefill, Decode }
}

closed_set! {
    /// The attention kernels the engine dispatches to (see `parts::attention`).
    pub enum AttnPath {
        Naive,
        Cublaslt,
        Paged,
        Flash,
        MetalSdpa,
    }
}

closed_set! {
    /// KV-cache policies of the `kv_cache` group.
    pub enum CachePolicy {
        #[serde(rename = "grow512")]
        #[strum(serialize = "grow512")]
        Grow512,
        Prealloc,
        Concat,
        Paged,
    }
}

closed_set! {
    /// Weight classes: unquantized, 4-bit, 8-bit, other ISQ types.
    pub enum WeightClass { Float, Q4, Q8, Qother }
}

closed_set! {
    /// The projection shapes of one layer, and the LM head.
    pub enum Proj {
        Q,
        #[serde(rename = "k_v")]
        #[strum(serialize = "k_v")]
        KV,
        O,
        GateUp,
        Down,
        LmHead,
    }
}

closed_set! {
    /// How the next token is drawn.
    pub enum SamplingMethod { Greedy, TopP }
}

closed_set! {
    /// The peers: the general frameworks (candle, PyTorch) and the specialised engine
    /// (llama.cpp, id word `llamacpp`).
    pub enum PeerEngine { Candle, Torch, Llamacpp }
}

/// A weight format as it appears in ids: its class and its name (`float/f32`, `q4/Q4K`,
/// `q8/Q8_0`). `parts::quant::Format` maps to and from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WeightFormat {
    pub class: WeightClass,
    pub name: String,
}

impl fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.class, self.name)
    }
}

impl FromStr for WeightFormat {
    type Err = anyhow::Error;
    /// `CLASS/NAME`, e.g. `float/f32` or `q4/Q4K`.
    fn from_str(s: &str) -> Result<Self> {
        let (class, name) = s.split_once('/').ok_or_else(|| {
            anyhow!("weight format `{s}` must be CLASS/NAME, e.g. float/f32 or q4/Q4K")
        })?;
        weight_format(class, name).map_err(|e| anyhow!("weight format `{s}`: {e:#}"))
    }
}

/// The per-token ops of `small_ops` (and the peers' rmsnorm and LM head).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SmallOp {
    #[serde(rename = "rmsnorm")]
    RmsNorm {
        tokens: usize,
    },
    Rope {
        tokens: usize,
    },
    Embedding {
        tokens: usize,
    },
    LmHead {
        tokens: usize,
    },
    Sampling {
        method: SamplingMethod,
    },
}

/// What one end-to-end iteration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "workload", rename_all = "snake_case")]
pub enum Workload {
    /// A request with a `prompt`-token prompt and one generated token.
    Prefill { prompt: usize },
    /// `gen` tokens after a `depth`-token prompt; only the decode is timed.
    Decode { gen: usize, depth: usize },
    /// Time to the first streamed token of a `prompt`-token request.
    Ttft { prompt: usize },
    /// `requests` requests at once.
    Concurrent { requests: usize },
}

/// What a peer case runs: a component at a preset's shapes, or a whole model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "peer_case", rename_all = "snake_case")]
pub enum PeerCase {
    Attention {
        phase: Phase,
        ctx: usize,
    },
    Ffn {
        phase: Phase,
        tokens: usize,
    },
    /// One projection's product at a preset's shape (`quant_matmul/q4/Q4_0/down/m1`): the
    /// counterpart of the engine's `quant_matmul` case.
    QuantMatmul {
        format: WeightFormat,
        proj: Proj,
        m: usize,
    },
    SmallOp(SmallOp),
    Workload(Workload),
}

/// A peer case's segments after its subject (`attention/decode/ctx2048`,
/// `quant_matmul/q4/Q4K/down/m1`, `rmsnorm/t1`, `prefill/pp512`).
impl fmt::Display for PeerCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerCase::Attention { phase, ctx } => write!(f, "attention/{phase}/ctx{ctx}"),
            PeerCase::Ffn { phase, tokens } => write!(f, "ffn/{phase}/t{tokens}"),
            PeerCase::QuantMatmul { format, proj, m } => {
                write!(f, "quant_matmul/{format}/{proj}/m{m}")
            }
            PeerCase::SmallOp(op) => write!(f, "{op}"),
            PeerCase::Workload(w) => write!(f, "{w}"),
        }
    }
}

/// What a case runs, by group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "part", rename_all = "snake_case")]
pub enum Case {
    Attention {
        phase: Phase,
        path: AttnPath,
        ctx: usize,
    },
    Ffn {
        format: WeightFormat,
        phase: Phase,
        tokens: usize,
    },
    KvCache {
        policy: CachePolicy,
        len: usize,
    },
    QuantMatmul {
        format: WeightFormat,
        proj: Proj,
        m: usize,
    },
    SmallOps(SmallOp),
    Generation(Workload),
    Peers {
        engine: PeerEngine,
        what: PeerCase,
    },
}

/// An end-to-end model as named in ids: a preset's synthetic model in a dtype, optionally
/// quantized in situ (`smollm2-135m-synthetic-bf16-isq-Q4K`), or a model file by its stem
/// (`SmolLM2-135M-Instruct.Q4_1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelName {
    Synthetic {
        preset: String,
        dtype: String,
        isq: Option<String>,
    },
    File {
        stem: String,
        isq: Option<String>,
    },
}

const SYNTHETIC: &str = "-synthetic-";
const ISQ: &str = "-isq-";

impl ModelName {
    /// The in-situ quantization, if any.
    pub fn isq(&self) -> Option<&str> {
        match self {
            ModelName::Synthetic { isq, .. } | ModelName::File { isq, .. } => isq.as_deref(),
        }
    }

    pub fn is_synthetic(&self) -> bool {
        matches!(self, ModelName::Synthetic { .. })
    }

    /// The same model with in-situ quantization `isq`.
    pub fn with_isq(mut self, q: Option<String>) -> Self {
        match &mut self {
            ModelName::Synthetic { isq, .. } | ModelName::File { isq, .. } => *isq = q,
        }
        self
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let isq = match self {
            ModelName::Synthetic { preset, dtype, isq } => {
                write!(f, "{preset}{SYNTHETIC}{dtype}")?;
                isq
            }
            ModelName::File { stem, isq } => {
                write!(f, "{stem}")?;
                isq
            }
        };
        match isq {
            Some(q) => write!(f, "{ISQ}{q}"),
            None => Ok(()),
        }
    }
}

impl FromStr for ModelName {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        if s.is_empty() || s.contains('/') {
            bail!("model name `{s}` must be one non-empty id segment");
        }
        let (base, isq) = match s.rsplit_once(ISQ) {
            Some((b, q)) if !q.is_empty() => (b, Some(q.to_string())),
            _ => (s, None),
        };
        Ok(match base.split_once(SYNTHETIC) {
            Some((preset, dtype)) if !preset.is_empty() && !dtype.is_empty() => {
                ModelName::Synthetic {
                    preset: preset.into(),
                    dtype: dtype.into(),
                    isq,
                }
            }
            _ => ModelName::File {
                stem: base.into(),
                isq,
            },
        })
    }
}

/// Who a case is about: a preset's shapes (components) or a model (end to end).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Preset(String),
    Model(ModelName),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Preset(p) => write!(f, "{p}"),
            Subject::Model(m) => write!(f, "{m}"),
        }
    }
}

/// A case's identity. `group/local` is Criterion's full id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CaseId {
    pub subject: Subject,
    pub case: Case,
}

impl CaseId {
    /// A component case of a preset.
    pub fn preset(preset: &str, case: Case) -> Self {
        CaseId {
            subject: Subject::Preset(preset.into()),
            case,
        }
    }

    /// An end-to-end case of a model.
    pub fn model(model: ModelName, case: Case) -> Self {
        CaseId {
            subject: Subject::Model(model),
            case,
        }
    }

    pub fn group(&self) -> Group {
        match self.case {
            Case::Attention { .. } => Group::Attention,
            Case::Ffn { .. } => Group::Ffn,
            Case::KvCache { .. } => Group::KvCache,
            Case::QuantMatmul { .. } => Group::QuantMatmul,
            Case::SmallOps(_) => Group::SmallOps,
            Case::Generation(_) => Group::Generation,
            Case::Peers { .. } => Group::Peers,
        }
    }

    /// The preset of a component case (None for a model's case).
    pub fn preset_name(&self) -> Option<&str> {
        match &self.subject {
            Subject::Preset(p) => Some(p),
            Subject::Model(_) => None,
        }
    }

    /// The model of an end-to-end case (None for a component case).
    pub fn model_name(&self) -> Option<&ModelName> {
        match &self.subject {
            Subject::Model(m) => Some(m),
            Subject::Preset(_) => None,
        }
    }

    /// The workload of an end-to-end case, the engine's or a peer's.
    pub fn workload(&self) -> Option<Workload> {
        match &self.case {
            Case::Generation(w)
            | Case::Peers {
                what: PeerCase::Workload(w),
                ..
            } => Some(*w),
            _ => None,
        }
    }

    /// The id inside its Criterion group (the full id without `group/`).
    pub fn local(&self) -> String {
        let s = self.to_string();
        let g: &str = self.group().into();
        s[g.len() + 1..].to_string()
    }
}

impl fmt::Display for SmallOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmallOp::RmsNorm { tokens } => write!(f, "rmsnorm/t{tokens}"),
            SmallOp::Rope { tokens } => write!(f, "rope/t{tokens}"),
            SmallOp::Embedding { tokens } => write!(f, "embedding/t{tokens}"),
            SmallOp::LmHead { tokens } => write!(f, "lm_head/t{tokens}"),
            SmallOp::Sampling { method } => write!(f, "sampling/{method}"),
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workload::Prefill { prompt } => write!(f, "prefill/pp{prompt}"),
            Workload::Decode { gen, depth } => write!(f, "decode/tg{gen}/depth{depth}"),
            Workload::Ttft { prompt } => write!(f, "ttft/pp{prompt}"),
            Workload::Concurrent { requests } => write!(f, "concurrent/c{requests}"),
        }
    }
}

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.subject;
        let g = self.group();
        match &self.case {
            Case::Attention { phase, path, ctx } => write!(f, "{g}/{s}/{phase}/{path}/ctx{ctx}"),
            Case::Ffn {
                format,
                phase,
                tokens,
            } => write!(f, "{g}/{s}/{format}/{phase}/t{tokens}"),
            Case::KvCache { policy, len } => write!(f, "{g}/{s}/{policy}/len{len}"),
            Case::QuantMatmul { format, proj, m } => write!(f, "{g}/{s}/{format}/{proj}/m{m}"),
            Case::SmallOps(op) => write!(f, "{g}/{s}/{op}"),
            Case::Generation(w) => write!(f, "{g}/{s}/{w}"),
            Case::Peers { engine, what } => {
                write!(f, "{g}/{engine}/{s}/{what}")
            }
        }
    }
}

/// The number after `prefix` in `seg` (`ctx512` with `ctx` → 512).
fn num(seg: &str, prefix: &str) -> Result<usize> {
    let digits = seg
        .strip_prefix(prefix)
        .ok_or_else(|| anyhow!("`{seg}` should start with `{prefix}`"))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!("`{seg}`: `{prefix}` should be followed by a number");
    }
    Ok(digits.parse()?)
}

fn word<T: FromStr>(seg: &str, what: &str) -> Result<T> {
    seg.parse()
        .map_err(|_| anyhow!("`{seg}` is not a known {what}"))
}

fn weight_format(class: &str, name: &str) -> Result<WeightFormat> {
    if name.is_empty() {
        bail!("empty weight format");
    }
    Ok(WeightFormat {
        class: word(class, "weight class")?,
        name: name.to_string(),
    })
}

fn small_op(rest: &[&str]) -> Result<SmallOp> {
    Ok(match rest {
        ["rmsnorm", t] => SmallOp::RmsNorm {
            tokens: num(t, "t")?,
        },
        ["rope", t] => SmallOp::Rope {
            tokens: num(t, "t")?,
        },
        ["embedding", t] => SmallOp::Embedding {
            tokens: num(t, "t")?,
        },
        ["lm_head", t] => SmallOp::LmHead {
            tokens: num(t, "t")?,
        },
        ["sampling", m] => SmallOp::Sampling {
            method: word(m, "sampling method")?,
        },
        _ => bail!("`{}` is not a small op", rest.join("/")),
    })
}

fn workload(rest: &[&str]) -> Result<Workload> {
    Ok(match rest {
        ["prefill", n] => Workload::Prefill {
            prompt: num(n, "pp")?,
        },
        ["decode", g, d] => Workload::Decode {
            gen: num(g, "tg")?,
            depth: num(d, "depth")?,
        },
        ["ttft", n] => Workload::Ttft {
            prompt: num(n, "pp")?,
        },
        ["concurrent", c] => Workload::Concurrent {
            requests: num(c, "c")?,
        },
        _ => bail!("`{}` is not an end-to-end workload", rest.join("/")),
    })
}

fn is_workload(first: &str) -> bool {
    matches!(first, "prefill" | "decode" | "ttft" | "concurrent")
}

impl FromStr for CaseId {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let parse = || -> Result<CaseId> {
            let group: Group = word(parts.first().copied().unwrap_or(""), "group")?;
            let preset = |p: &str| -> Result<Subject> {
                if p.is_empty() {
                    bail!("empty preset");
                }
                Ok(Subject::Preset(p.into()))
            };
            let (subject, case) = match (group, &parts[1..]) {
                (Group::Attention, [p, phase, path, ctx]) => (
                    preset(p)?,
                    Case::Attention {
                        phase: word(phase, "phase")?,
                        path: word(path, "attention path")?,
                        ctx: num(ctx, "ctx")?,
                    },
                ),
                (Group::Ffn, [p, class, fmt, phase, t]) => (
                    preset(p)?,
                    Case::Ffn {
                        format: weight_format(class, fmt)?,
                        phase: word(phase, "phase")?,
                        tokens: num(t, "t")?,
                    },
                ),
                (Group::KvCache, [p, policy, len]) => (
                    preset(p)?,
                    Case::KvCache {
                        policy: word(policy, "cache policy")?,
                        len: num(len, "len")?,
                    },
                ),
                (Group::QuantMatmul, [p, class, fmt, proj, m]) => (
                    preset(p)?,
                    Case::QuantMatmul {
                        format: weight_format(class, fmt)?,
                        proj: word(proj, "projection")?,
                        m: num(m, "m")?,
                    },
                ),
                (Group::SmallOps, [p, rest @ ..]) => (preset(p)?, Case::SmallOps(small_op(rest)?)),
                (Group::Generation, [m, rest @ ..]) => (
                    Subject::Model(m.parse()?),
                    Case::Generation(workload(rest)?),
                ),
                (Group::Peers, [engine, subject, rest @ ..]) => {
                    let engine: PeerEngine = word(engine, "peer engine")?;
                    match rest {
                        [first, ..] if is_workload(first) => (
                            Subject::Model(subject.parse()?),
                            Case::Peers {
                                engine,
                                what: PeerCase::Workload(workload(rest)?),
                            },
                        ),
                        ["attention", phase, ctx] => (
                            preset(subject)?,
                            Case::Peers {
                                engine,
                                what: PeerCase::Attention {
                                    phase: word(phase, "phase")?,
                                    ctx: num(ctx, "ctx")?,
                                },
                            },
                        ),
                        ["ffn", phase, t] => (
                            preset(subject)?,
                            Case::Peers {
                                engine,
                                what: PeerCase::Ffn {
                                    phase: word(phase, "phase")?,
                                    tokens: num(t, "t")?,
                                },
                            },
                        ),
                        ["quant_matmul", class, fmt, proj, m] => (
                            preset(subject)?,
                            Case::Peers {
                                engine,
                                what: PeerCase::QuantMatmul {
                                    format: weight_format(class, fmt)?,
                                    proj: word(proj, "projection")?,
                                    m: num(m, "m")?,
                                },
                            },
                        ),
                        _ => (
                            preset(subject)?,
                            Case::Peers {
                                engine,
                                what: PeerCase::SmallOp(small_op(rest)?),
                            },
                        ),
                    }
                }
                (g, _) => bail!("wrong number of segments for a `{g}` case"),
            };
            Ok(CaseId { subject, case })
        };
        parse().map_err(|e| anyhow!("case id `{s}`: {e:#}"))
    }
}
