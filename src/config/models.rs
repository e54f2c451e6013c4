//! `models.toml`: the one source of shapes. Every bench case is generated from a preset.
//! Add a model by adding a `[presets.NAME]` table there; nothing in the code lists presets.

use crate::util::paths::crate_root;
use anyhow::{bail, Context, Result};
use candle_core::DType;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Environment variable that selects presets (comma separated).
pub const MODELS_ENV: &str = "MISTRALRS_BENCH_MODELS";
/// Presets benched when `MISTRALRS_BENCH_MODELS` is unset.
pub const DEFAULT_MODELS: &str = "smollm2-135m";
/// Environment variable that points at another models file.
pub const MODELS_FILE_ENV: &str = "MISTRALRS_BENCH_MODELS_FILE";

/// Where an end-to-end model comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ModelSource {
    /// Weights written by the crate from the preset's shapes (seeded random).
    #[default]
    Synthetic,
    /// A GGUF file (path relative to the crate root unless absolute).
    Gguf { path: PathBuf },
    /// A local HuggingFace-style directory.
    Local { path: PathBuf },
}

/// Shapes of one decoder-only transformer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    #[serde(skip)]
    pub name: String,
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub layers: usize,
    pub vocab: usize,
    pub rope_theta: f64,
    pub max_context: usize,
    pub dtype: String,
    #[serde(default = "default_eps")]
    pub rms_eps: f64,
    /// The LM head shares the embedding matrix (no separate `lm_head.weight`).
    #[serde(default)]
    pub tie_embeddings: bool,
    #[serde(default)]
    pub source: ModelSource,
}

fn default_eps() -> f64 {
    1e-5
}

impl Preset {
    /// The preset's dtype (for GPU runs).
    pub fn dtype(&self) -> DType {
        parse_dtype(&self.dtype).expect("validated at load")
    }

    /// Query heads per KV head.
    pub fn n_rep(&self) -> usize {
        self.heads / self.kv_heads
    }

    /// Parameter count: embedding, layers, final norm, and the LM head unless tied.
    pub fn n_params(&self) -> u64 {
        let (h, i) = (self.hidden as u64, self.intermediate as u64);
        let q = h * (self.heads * self.head_dim) as u64;
        let kv = 2 * h * (self.kv_heads * self.head_dim) as u64;
        let o = (self.heads * self.head_dim) as u64 * h;
        let ffn = 3 * h * i;
        let norms = 2 * h;
        let per_layer = q + kv + o + ffn + norms;
        let emb = if self.tie_embeddings { 1 } else { 2 };
        emb * self.vocab as u64 * h + self.layers as u64 * per_layer + h
    }

    fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        let nonzero = [
            ("hidden", self.hidden),
            ("intermediate", self.intermediate),
            ("heads", self.heads),
            ("kv_heads", self.kv_heads),
            ("head_dim", self.head_dim),
            ("layers", self.layers),
            ("vocab", self.vocab),
            ("max_context", self.max_context),
        ];
        for (field, v) in nonzero {
            if v == 0 {
                return Err((field, "must be greater than 0".into()));
            }
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            return Err((
                "kv_heads",
                format!(
                    "heads ({}) must be a multiple of kv_heads ({})",
                    self.heads, self.kv_heads
                ),
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(("head_dim", "must be even (RoPE rotates pairs)".into()));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(("rope_theta", "must be a positive number".into()));
        }
        if !(self.rms_eps.is_finite() && self.rms_eps > 0.0) {
            return Err(("rms_eps", "must be a positive number".into()));
        }
        if parse_dtype(&self.dtype).is_none() {
            return Err((
                "dtype",
                format!("`{}` is not one of f32, f16, bf16", self.dtype),
            ));
        }
        Ok(())
    }
}

/// Parses `f32`, `f16` or `bf16`.
pub fn parse_dtype(s: &str) -> Option<DType> {
    match s.to_ascii_lowercase().as_str() {
        "f32" => Some(DType::F32),
        "f16" => Some(DType::F16),
        "bf16" => Some(DType::BF16),
        _ => None,
    }
}

/// Short name of a dtype as used in case ids.
pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::F64 => "f64",
        DType::U8 => "u8",
        DType::U32 => "u32",
        DType::I64 => "i64",
        _ => "other",
    }
}

/// All presets of one models file, in name order.
#[derive(Debug, Clone)]
pub struct Models {
    pub file: PathBuf,
    pub presets: BTreeMap<String, Preset>,
}

impl Models {
    /// Parses a models file's text; `file` is only used in error messages.
    pub fn parse(text: &str, file: &Path) -> Result<Self> {
        let f = file.display();
        let table: toml::Table =
            toml::from_str(text).with_context(|| format!("{f}: not valid TOML"))?;
        for key in table.keys() {
            if key != "presets" {
                bail!("{f}: unknown top-level key `{key}` (expected only [presets.NAME] tables)");
            }
        }
        let Some(presets) = table.get("presets") else {
            bail!("{f}: no [presets.NAME] table");
        };
        let Some(presets) = presets.as_table() else {
            bail!("{f}: `presets` must be a table of [presets.NAME] tables");
        };
        let mut out = BTreeMap::new();
        for (name, value) in presets {
            let mut p: Preset = value.clone().try_into().map_err(|e: toml::de::Error| {
                anyhow::anyhow!("{f}: preset `{name}`: {}", e.message())
            })?;
            p.name = name.clone();
            if let Err((field, why)) = p.validate() {
                bail!("{f}: preset `{name}`: field `{field}` {why}");
            }
            out.insert(name.clone(), p);
        }
        if out.is_empty() {
            bail!("{f}: [presets] holds no preset");
        }
        Ok(Self {
            file: file.to_path_buf(),
            presets: out,
        })
    }

    /// Reads and parses a models file.
    pub fn load(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("{}: cannot read models file", file.display()))?;
        Self::parse(&text, file)
    }

    /// The crate's `models.toml`, or the file named by `MISTRALRS_BENCH_MODELS_FILE`.
    pub fn load_default() -> Result<Self> {
        let file = match std::env::var_os(MODELS_FILE_ENV) {
            Some(p) => PathBuf::from(p),
            None => crate_root().join("models.toml"),
        };
        Self::load(&file)
    }

    /// Looks up one preset by name.
    pub fn get(&self, name: &str) -> Result<&Preset> {
        self.presets.get(name).with_context(|| {
            format!(
                "{}: no preset `{name}` (known: {})",
                self.file.display(),
                self.presets.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// Presets named in a comma-separated list, in list order.
    pub fn select(&self, list: &str) -> Result<Vec<Preset>> {
        let names: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if names.is_empty() {
            bail!(
                "{MODELS_ENV} is empty: name at least one preset of {}",
                self.file.display()
            );
        }
        names.into_iter().map(|n| self.get(n).cloned()).collect()
    }

    /// Presets chosen by `MISTRALRS_BENCH_MODELS` (default `smollm2-135m`).
    pub fn selected(&self) -> Result<Vec<Preset>> {
        let list = std::env::var(MODELS_ENV).unwrap_or_else(|_| DEFAULT_MODELS.to_string());
        self.select(&list)
    }
}
