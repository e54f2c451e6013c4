//! The peers report: mistral.rs beside candle and PyTorch eager, from summary files
//! of one run (the suite's own summary holds mistral.rs and candle; `scripts/peers/
//! torch_peers.py` writes PyTorch's in the same schema). Markdown tables with ratios, a JSON
//! copy, and SVG plots (plotters).
//!
//! Ratios are "mistral.rs advantage": how many times faster (or smaller) mistral.rs is than
//! the peer on that row; below 1 the peer wins.

use crate::case::{Case, CaseId, PeerCase, PeerEngine, SmallOp, WeightClass, Workload};
use crate::results::{CaseSummary, Summary};
use crate::util::table::Table;
use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The engines of the report, in column order.
pub const ENGINES: [&str; 3] = ["mistral.rs", "candle", "PyTorch"];

/// The column of an engine: mistral.rs, then each peer.
fn column(peer: Option<PeerEngine>) -> usize {
    match peer {
        None => 0,
        Some(PeerEngine::Candle) => 1,
        Some(PeerEngine::Torch) => 2,
    }
}

/// What a row measures, and which way is better.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub enum Better {
    Higher,
    Lower,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// e2e: the model; components: the preset.
    pub subject: String,
    pub metric: String,
    pub unit: String,
    pub better: Better,
    /// One value per engine of [`ENGINES`].
    pub values: [Option<f64>; 3],
    /// How each engine's value was obtained where it differs (attention path, TTFT source).
    pub notes: [Option<String>; 3],
    /// The dtype each engine computed the row in (the engine's own `engine_dtype` where it
    /// chose one, else the case's dtype).
    #[serde(default)]
    pub dtypes: [Option<String>; 3],
}

impl Row {
    /// mistral.rs advantage over engine `i` (1 = candle, 2 = PyTorch).
    pub fn advantage(&self, i: usize) -> Option<f64> {
        let (m, p) = (self.values[0]?, self.values[i]?);
        if m <= 0.0 || p <= 0.0 {
            return None;
        }
        Some(match self.better {
            Better::Higher => m / p,
            Better::Lower => p / m,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub device_names: BTreeMap<String, String>,
    pub sources: Vec<String>,
    pub e2e: Vec<Row>,
    pub components: Vec<Row>,
    /// The build of the summary each engine's cases came from (rustflags, target features,
    /// cargo features; "not recorded" for a summary without one).
    #[serde(default)]
    pub builds: [Option<String>; 3],
}

/// The metric label of an end-to-end workload (`prefill/pp512`, `decode/depth0`, ...).
fn workload_metric(w: &Workload) -> String {
    match w {
        Workload::Decode { depth, .. } => format!("decode/depth{depth}"),
        other => other.to_string(),
    }
}

/// Report order of workloads: prefill, TTFT, decode, concurrency, each by size.
fn workload_rank(w: &Workload) -> (usize, usize) {
    match *w {
        Workload::Prefill { prompt } => (0, prompt),
        Workload::Ttft { prompt } => (1, prompt),
        Workload::Decode { depth, .. } => (2, depth),
        Workload::Concurrent { requests } => (3, requests),
    }
}

/// The dtype a case computed in: the engine's own choice where it recorded one
/// (`extra.engine_dtype`), else the case's dtype.
pub fn computed_dtype(c: &CaseSummary) -> String {
    c.extra
        .get("engine_dtype")
        .and_then(|d| d.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| c.dtype.clone())
}

/// Reads summary files and builds the report.
pub fn build(files: &[PathBuf]) -> Result<Report> {
    let mut cases = Vec::new();
    let mut device_names = BTreeMap::new();
    let mut builds: [Option<String>; 3] = Default::default();
    for f in files {
        let s = Summary::load(f)?;
        device_names.insert(s.device.clone(), s.device_name.clone());
        let build = s
            .build
            .as_ref()
            .map(|b| b.describe())
            .unwrap_or_else(|| "not recorded".into());
        for c in s.cases.iter().filter(|c| c.is_ok()) {
            let col = match c.id().map(|i| i.case) {
                Some(Case::Peers { engine, .. }) => column(Some(engine)),
                _ => 0,
            };
            builds[col].get_or_insert_with(|| build.clone());
        }
        cases.extend(s.cases.into_iter().filter(|c| c.is_ok()));
    }
    if device_names.len() > 1 {
        return Err(anyhow!(
            "the summaries come from different devices ({}): compare one machine at a time",
            device_names.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let e2e = e2e_rows(&cases);
    let components = component_rows(&cases);
    if e2e.is_empty() && components.is_empty() {
        return Err(anyhow!(
            "no peer cases in {} (run the `peers` group and scripts/peers/torch_peers.py)",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(Report {
        device_names,
        sources: files.iter().map(|f| f.display().to_string()).collect(),
        e2e,
        components,
        builds,
    })
}

/// End-to-end rows per model that at least one peer ran.
fn e2e_rows(cases: &[CaseSummary]) -> Vec<Row> {
    // model -> workload -> engine -> case
    type ByEngine<'a> = [Option<&'a CaseSummary>; 3];
    let mut by: BTreeMap<String, BTreeMap<Workload, ByEngine>> = BTreeMap::new();
    for c in cases {
        let Some(id) = c.id() else { continue };
        let (Some(w), Some(model)) = (id.workload(), id.model_name()) else {
            continue;
        };
        let peer = match id.case {
            Case::Peers { engine, .. } => Some(engine),
            _ => None,
        };
        by.entry(model.to_string())
            .or_default()
            .entry(w)
            .or_default()[column(peer)] = Some(c);
    }
    let mut rows = Vec::new();
    for (model, kinds) in by {
        if !kinds.values().any(|v| v[1].is_some() || v[2].is_some()) {
            continue;
        }
        let get = |pred: &dyn Fn(&Workload) -> bool| -> ByEngine {
            kinds
                .iter()
                .find(|(w, _)| pred(w))
                .map(|(_, v)| *v)
                .unwrap_or_default()
        };
        let mut ordered: Vec<&Workload> = kinds.keys().collect();
        ordered.sort_by_key(|w| workload_rank(w));
        for w in ordered {
            if matches!(w, Workload::Ttft { .. }) {
                continue;
            }
            let v = kinds[w];
            if v[1].is_none() && v[2].is_none() {
                continue;
            }
            rows.push(Row {
                subject: model.clone(),
                metric: workload_metric(w),
                unit: "tok/s".into(),
                better: Better::Higher,
                values: v.map(|c| c.and_then(|c| c.tokens_per_s)),
                notes: Default::default(),
                dtypes: v.map(|c| c.map(computed_dtype)),
            });
        }
        // Time to first token: the engine's own TTFT case; the peers have no request path,
        // so theirs is the 128-token forward pass plus the first token (their pp128 case).
        let t = get(&|w| *w == Workload::Ttft { prompt: 128 });
        let p = get(&|w| *w == Workload::Prefill { prompt: 128 });
        rows.push(Row {
            subject: model.clone(),
            metric: "time to first token, 128-token prompt".into(),
            unit: "ms".into(),
            better: Better::Lower,
            values: [
                t[0].and_then(CaseSummary::median_ns).map(|n| n / 1e6),
                p[1].and_then(CaseSummary::median_ns).map(|n| n / 1e6),
                p[2].and_then(CaseSummary::median_ns).map(|n| n / 1e6),
            ],
            notes: [
                Some("ttft/pp128 request".into()),
                Some("prefill/pp128 forward".into()),
                Some("prefill/pp128 forward".into()),
            ],
            dtypes: [t[0], p[1], p[2]].map(|c| c.map(computed_dtype)),
        });
        let d0 = get(&|w| matches!(w, Workload::Decode { depth: 0, .. }));
        for (q, label) in [("p50", "median"), ("p99", "p99")] {
            rows.push(Row {
                subject: model.clone(),
                metric: format!("inter-token latency {label}, depth 0"),
                unit: "ms".into(),
                better: Better::Lower,
                values: d0.map(|c| c.and_then(|c| c.extra.get("itl_ms")?.get(q)?.as_f64())),
                notes: Default::default(),
                dtypes: Default::default(),
            });
        }
        let mut mem: [Option<f64>; 3] = [None; 3];
        let mut kind_note: [Option<String>; 3] = Default::default();
        for v in kinds.values() {
            for (i, c) in v.iter().enumerate() {
                let Some(m) = c.and_then(|c| c.extra.get("memory")) else {
                    continue;
                };
                // the engine's own footprint (peak − in use before its model loaded); null
                // where it could not be measured cleanly (not the process's first model)
                if let Some(pk) = m.get("footprint_mib").and_then(|x| x.as_f64()) {
                    mem[i] = Some(mem[i].map_or(pk, |x: f64| x.max(pk)));
                    kind_note[i] = m.get("kind").and_then(|k| k.as_str()).map(String::from);
                }
            }
        }
        rows.push(Row {
            subject: model.clone(),
            metric: "memory footprint (peak − before load)".into(),
            unit: "MiB".into(),
            better: Better::Lower,
            values: mem,
            notes: kind_note,
            dtypes: Default::default(),
        });
    }
    rows
}

/// Does the engine's case `id` compute what the peer's component `what` computes?
fn counterpart(what: &PeerCase, id: &CaseId) -> bool {
    match (what, &id.case) {
        (
            PeerCase::Attention { phase, ctx },
            Case::Attention {
                phase: p, ctx: c, ..
            },
        ) => p == phase && c == ctx,
        (
            PeerCase::Ffn { phase, tokens },
            Case::Ffn {
                format,
                phase: p,
                tokens: t,
            },
        ) => format.class == WeightClass::Float && p == phase && t == tokens,
        (PeerCase::SmallOp(op), Case::SmallOps(o)) => op == o,
        _ => false,
    }
}

/// The metric label of a peer component (`attention/decode/ctx2048`, `ffn/prefill/t512`,
/// `rmsnorm/t1`).
fn component_metric(what: &PeerCase) -> Option<String> {
    Some(match what {
        PeerCase::Attention { phase, ctx } => format!("attention/{phase}/ctx{ctx}"),
        PeerCase::Ffn { phase, tokens } => format!("ffn/{phase}/t{tokens}"),
        PeerCase::SmallOp(op @ (SmallOp::RmsNorm { .. } | SmallOp::LmHead { .. })) => {
            op.to_string()
        }
        PeerCase::SmallOp(_) | PeerCase::Workload(_) => return None,
    })
}

/// Component rows: the peers' component ids, against the engine's matching case (the
/// fastest attention path the engine has for that shape, named in the notes).
fn component_rows(cases: &[CaseSummary]) -> Vec<Row> {
    let mut rows: BTreeMap<(String, String), (PeerCase, Row)> = BTreeMap::new();
    for c in cases {
        let Some(id) = c.id() else { continue };
        let (Case::Peers { engine, what }, Some(preset)) = (&id.case, id.preset_name()) else {
            continue;
        };
        let Some(metric) = component_metric(what) else {
            continue;
        };
        let (_, row) = rows
            .entry((preset.to_string(), metric.clone()))
            .or_insert_with(|| {
                (
                    what.clone(),
                    Row {
                        subject: preset.to_string(),
                        metric,
                        unit: "µs".into(),
                        better: Better::Lower,
                        values: [None; 3],
                        notes: Default::default(),
                        dtypes: Default::default(),
                    },
                )
            });
        row.values[column(Some(*engine))] = c.median_ns().map(|n| n / 1e3);
        row.dtypes[column(Some(*engine))] = Some(computed_dtype(c));
    }
    for ((preset, _), (what, row)) in rows.iter_mut() {
        // the engine's counterpart
        let mut best: Option<(f64, String)> = None;
        for c in cases.iter().filter(|c| c.preset == *preset) {
            let (Some(m), Some(id)) = (c.median_ns(), c.id()) else {
                continue;
            };
            if id.preset_name() == Some(preset.as_str())
                && counterpart(what, &id)
                && best.as_ref().is_none_or(|(b, _)| m < *b)
            {
                best = Some((m, c.case.clone()));
            }
        }
        if let Some((m, case)) = best {
            row.values[0] = Some(m / 1e3);
            row.dtypes[0] = cases.iter().find(|c| c.case == case).map(computed_dtype);
            row.notes[0] = Some(case);
        }
    }
    rows.into_values().map(|(_, r)| r).collect()
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) if x >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

/// `f16 / f32 / —`: the dtype of each engine's value (blank when no engine recorded one).
fn dtypes(row: &Row) -> String {
    if row.dtypes.iter().all(Option::is_none) {
        return String::new();
    }
    row.dtypes
        .iter()
        .map(|d| d.clone().unwrap_or_else(|| "—".into()))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn ratio(v: Option<f64>) -> String {
    v.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "—".into())
}

/// The end-to-end rows of one model as a table.
pub fn e2e_table(rows: &[&Row]) -> Table {
    let mut t = Table::new(&[
        "metric",
        "unit",
        "mistral.rs>",
        "candle>",
        "PyTorch>",
        "× vs candle>",
        "× vs PyTorch>",
        "dtypes",
    ]);
    for row in rows {
        t.push([
            row.metric.clone(),
            row.unit.clone(),
            fmt(row.values[0]),
            fmt(row.values[1]),
            fmt(row.values[2]),
            ratio(row.advantage(1)),
            ratio(row.advantage(2)),
            dtypes(row),
        ]);
    }
    t
}

/// The component rows of one preset as a table.
pub fn component_table(rows: &[&Row]) -> Table {
    let mut t = Table::new(&[
        "component",
        "mistral.rs>",
        "candle>",
        "PyTorch>",
        "× vs candle>",
        "× vs PyTorch>",
        "mistral.rs case",
    ]);
    for row in rows {
        t.push([
            row.metric.clone(),
            fmt(row.values[0]),
            fmt(row.values[1]),
            fmt(row.values[2]),
            ratio(row.advantage(1)),
            ratio(row.advantage(2)),
            format!("`{}`", row.notes[0].clone().unwrap_or_default()),
        ]);
    }
    t
}

/// Rows grouped by subject, in order of first appearance.
fn by_subject(rows: &[Row]) -> Vec<(String, Vec<&Row>)> {
    let mut out: Vec<(String, Vec<&Row>)> = Vec::new();
    for r in rows {
        match out.iter_mut().find(|(s, _)| *s == r.subject) {
            Some((_, v)) => v.push(r),
            None => out.push((r.subject.clone(), vec![r])),
        }
    }
    out
}

/// The Markdown tables.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    for (dev, name) in &r.device_names {
        s.push_str(&format!(
            "Device: {dev} ({name}). Sources: {}.\n\n",
            r.sources.join(", ")
        ));
    }
    for (i, b) in r.builds.iter().enumerate() {
        if let Some(b) = b {
            s.push_str(&format!("Build of the {} figures: {b}.\n", ENGINES[i]));
        }
    }
    if r.builds.iter().any(Option::is_some) {
        s.push('\n');
    }
    s.push_str(
        "\"× vs\" columns: mistral.rs advantage (peer time ÷ mistral.rs time, or mistral.rs \
         tok/s ÷ peer tok/s); below 1.00× the peer is faster.\n\n",
    );
    for (subject, rows) in by_subject(&r.e2e) {
        s.push_str(&format!("\n### End to end: {subject}\n\n"));
        s.push_str(&e2e_table(&rows).markdown());
    }
    if let Some(k) = r
        .e2e
        .iter()
        .find(|x| x.unit == "MiB")
        .and_then(|x| x.notes.iter().flatten().next())
    {
        s.push_str(&format!(
            "\nMemory: {k}, sampled every 2 ms during the model's cases; the footprint is the \
             peak minus what was in use just before the engine loaded the model.\n"
        ));
    }
    for (subject, rows) in by_subject(&r.components) {
        s.push_str(&format!(
            "\n### Components: {subject} (median µs per call)\n\n"
        ));
        s.push_str(&component_table(&rows).markdown());
    }
    s
}

/// Writes `peers.md`, `peers.json` and the SVG plots into `out` (refusing to replace
/// existing files unless `force`). Returns the Markdown.
pub fn write(r: &Report, out: &Path, force: bool) -> Result<String> {
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let md_path = out.join("peers.md");
    if md_path.exists() && !force {
        return Err(anyhow!(
            "{} exists; pass --force to replace the report",
            md_path.display()
        ));
    }
    let mut md = markdown(r);
    std::fs::write(out.join("peers.json"), serde_json::to_string_pretty(r)?)?;
    let mut plots = Vec::new();
    // tokens/s: prefill 512 and decode at depth 0, per model
    let mut labels = Vec::new();
    let mut vals = Vec::new();
    for row in r.e2e.iter().filter(|x| {
        x.unit == "tok/s" && (x.metric == "prefill/pp512" || x.metric == "decode/depth0")
    }) {
        labels.push(format!("{} {}", short(&row.subject), row.metric));
        vals.push(row.values);
    }
    if !labels.is_empty() {
        super::plot::bar_chart(
            &out.join("tokens-per-s.svg"),
            "Tokens per second (log scale)",
            "tok/s",
            &ENGINES,
            &labels,
            &vals,
            true,
        )?;
        plots.push(("tokens-per-s.svg", "tokens/s by engine and model"));
    }
    for (file, unit, pick, title, log) in [
        (
            "latency.svg",
            "ms",
            "latency",
            "Latency: TTFT (128-token prompt) and inter-token p50/p99 (ms, log scale)",
            true,
        ),
        (
            "memory.svg",
            "MiB",
            "memory",
            "Memory footprint: peak minus in use before load (MiB)",
            false,
        ),
    ] {
        let sel: Vec<&Row> = r
            .e2e
            .iter()
            .filter(|x| x.unit == unit && (pick != "memory" || x.metric.starts_with("memory")))
            .collect();
        if sel.is_empty() {
            continue;
        }
        let labels: Vec<String> = sel
            .iter()
            .map(|x| {
                let m = x
                    .metric
                    .replace("time to first token, 128-token prompt", "TTFT")
                    .replace("inter-token latency ", "ITL ")
                    .replace(", depth 0", "")
                    .replace("memory footprint (peak − before load)", "");
                format!("{} {m}", short(&x.subject))
            })
            .collect();
        let vals: Vec<[Option<f64>; 3]> = sel.iter().map(|x| x.values).collect();
        super::plot::bar_chart(&out.join(file), title, unit, &ENGINES, &labels, &vals, log)?;
        plots.push((file, title));
    }
    if !r.components.is_empty() {
        let labels: Vec<String> = r
            .components
            .iter()
            .map(|x| x.metric.replace("attention/", "attn "))
            .collect();
        let vals: Vec<[Option<f64>; 3]> = r.components.iter().map(|x| x.values).collect();
        super::plot::bar_chart(
            &out.join("components.svg"),
            "Components: median µs per call (log scale)",
            "µs",
            &ENGINES,
            &labels,
            &vals,
            true,
        )?;
        plots.push(("components.svg", "components"));
    }
    md.push_str("\nPlots: ");
    md.push_str(
        &plots
            .iter()
            .map(|(f, t)| format!("[{t}]({f})"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    md.push('\n');
    std::fs::write(&md_path, &md)?;
    Ok(md)
}

/// A short model label for plot axes.
fn short(model: &str) -> String {
    model
        .replace("-synthetic-", " ")
        .replace("-Instruct", "")
        .replace(".Q4_1", " Q4_1")
}
