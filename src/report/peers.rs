//! The peers report: mistral.rs beside candle, PyTorch eager and llama.cpp, from summary
//! files of one run (the suite's own summary holds mistral.rs and candle; `scripts/peers/
//! torch_peers.py` and `scripts/peers/llamacpp_peers.py` write PyTorch's and llama.cpp's in
//! the same schema). Markdown tables with ratios, a JSON copy, and SVG plots (plotters). Only
//! the engines that have figures get columns; llama-bench's own records get a table of their
//! own.
//!
//! Ratios are "mistral.rs advantage": how many times faster (or smaller) mistral.rs is than
//! the peer on that row; below 1 the peer wins.

use crate::case::{Case, CaseId, PeerCase, PeerEngine, SmallOp, WeightClass, Workload};
use crate::results::{CaseSummary, Summary, ToolRun};
use crate::util::table::Table;
use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How many engines a report can hold.
pub const N: usize = 4;

/// The engines of the report, in column order.
pub const ENGINES: [&str; N] = ["mistral.rs", "candle", "PyTorch", "llama.cpp"];

/// The column of an engine: mistral.rs, then each peer.
fn column(peer: Option<PeerEngine>) -> usize {
    match peer {
        None => 0,
        Some(PeerEngine::Candle) => 1,
        Some(PeerEngine::Torch) => 2,
        Some(PeerEngine::Llamacpp) => 3,
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
    pub values: [Option<f64>; N],
    /// How each engine's value was obtained where it differs (attention path, TTFT source).
    pub notes: [Option<String>; N],
    /// The dtype each engine computed the row in (the engine's own `engine_dtype` where it
    /// chose one, else the case's dtype).
    #[serde(default)]
    pub dtypes: [Option<String>; N],
    /// The CPU threads each engine's figure ran on, where it recorded them (`extra.threads`).
    #[serde(default)]
    pub threads: [Option<u64>; N],
}

impl Row {
    /// mistral.rs advantage over engine `i` (1 = candle, 2 = PyTorch, 3 = llama.cpp).
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
    /// cargo features; a peer's own build record, as llama.cpp's CMake flags; "not recorded"
    /// for a summary without one).
    #[serde(default)]
    pub builds: [Option<String>; N],
    /// The columns (indices into [`ENGINES`]) that have at least one figure.
    pub engines: Vec<usize>,
    /// The peers' own tools' runs (llama-bench), printed as they reported.
    pub tool_runs: Vec<ToolRun>,
}

/// The metric label of an end-to-end workload (`prefill/pp512`, `decode/depth0`, ...).
fn workload_metric(w: &Workload) -> String {
    match w {
        // the peers' length; another (the quick profile's 32) is named
        Workload::Decode { gen, depth } if *gen == crate::parts::generation::TG => {
            format!("decode/depth{depth}")
        }
        Workload::Decode { gen, depth } => format!("decode/tg{gen}/depth{depth}"),
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

/// The CPU threads a case recorded (`extra.threads`).
fn threads_of(c: &CaseSummary) -> Option<u64> {
    c.extra.get("threads").and_then(|t| t.as_u64())
}

/// Reads summary files and builds the report.
pub fn build(files: &[PathBuf]) -> Result<Report> {
    let mut cases = Vec::new();
    let mut device_names = BTreeMap::new();
    let mut builds: [Option<String>; N] = Default::default();
    let mut tool_runs = Vec::new();
    for f in files {
        let s = Summary::load(f)?;
        device_names.insert(s.device.clone(), s.device_name.clone());
        let build = match (&s.build, &s.peer_build) {
            (Some(b), _) => b.describe(),
            (None, Some(p)) => describe_peer_build(p),
            (None, None) => "not recorded".into(),
        };
        tool_runs.extend(s.tool_runs.iter().cloned());
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
    let engines = (0..N)
        .filter(|&i| {
            e2e.iter()
                .chain(components.iter())
                .any(|r| r.values[i].is_some())
        })
        .collect();
    if e2e.is_empty() && components.is_empty() {
        return Err(anyhow!(
            "no peer cases in {} (run the `peers` group, scripts/peers/torch_peers.py or llamacpp_peers.py)",
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
        engines,
        tool_runs,
    })
}

/// A peer's own build record in one line (llama.cpp: its commit, CMake flags, compiler and
/// build time, as scripts/peers/llamacpp.sh wrote them).
fn describe_peer_build(p: &serde_json::Value) -> String {
    let s = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
    let flags = p
        .get("cmake_flags")
        .and_then(|f| f.as_array())
        .map(|f| {
            f.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let secs = p.get("build_seconds").and_then(|v| v.as_u64());
    format!(
        "{} {} ({}), CMake `{flags}`, {}{}",
        s("engine"),
        s("llama_cpp_commit"),
        s("source"),
        s("compiler"),
        secs.map(|t| format!(", built in {t} s"))
            .unwrap_or_default()
    )
}

/// End-to-end rows per model that at least one peer ran.
fn e2e_rows(cases: &[CaseSummary]) -> Vec<Row> {
    // model -> workload -> engine -> case
    type ByEngine<'a> = [Option<&'a CaseSummary>; N];
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
        if !kinds.values().any(|v| v[1..].iter().any(Option::is_some)) {
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
            if v[1..].iter().all(Option::is_none) {
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
                threads: v.map(|c| c.and_then(threads_of)),
            });
        }
        // Time to first token: the engine's own TTFT case; the peers have no request path,
        // so theirs is the 128-token forward pass plus the first token (their pp128 case).
        let t = get(&|w| *w == Workload::Ttft { prompt: 128 });
        let p = get(&|w| *w == Workload::Prefill { prompt: 128 });
        let src: ByEngine = std::array::from_fn(|i| if i == 0 { t[0] } else { p[i] });
        rows.push(Row {
            subject: model.clone(),
            metric: "time to first token, 128-token prompt".into(),
            unit: "ms".into(),
            better: Better::Lower,
            values: src.map(|c| c.and_then(CaseSummary::median_ns).map(|n| n / 1e6)),
            notes: std::array::from_fn(|i| {
                src[i].map(|_| {
                    if i == 0 {
                        "ttft/pp128 request".into()
                    } else {
                        "prefill/pp128 forward".into()
                    }
                })
            }),
            dtypes: src.map(|c| c.map(computed_dtype)),
            threads: src.map(|c| c.and_then(threads_of)),
        });
        // the peers' decode length (128 tokens): a quick profile's shorter run has no peer
        let d0 = get(&|w| {
            *w == Workload::Decode {
                gen: crate::parts::generation::TG,
                depth: 0,
            }
        });
        for (q, label) in [("p50", "median"), ("p99", "p99")] {
            rows.push(Row {
                subject: model.clone(),
                metric: format!("inter-token latency {label}, depth 0"),
                unit: "ms".into(),
                better: Better::Lower,
                values: d0.map(|c| c.and_then(|c| c.extra.get("itl_ms")?.get(q)?.as_f64())),
                notes: Default::default(),
                dtypes: Default::default(),
                threads: Default::default(),
            });
        }
        let mut mem: [Option<f64>; N] = [None; N];
        let mut kind_note: [Option<String>; N] = Default::default();
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
            threads: Default::default(),
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
        (
            PeerCase::QuantMatmul { format, proj, m },
            Case::QuantMatmul {
                format: f,
                proj: p,
                m: mm,
            },
        ) => f == format && p == proj && mm == m,
        (PeerCase::SmallOp(op), Case::SmallOps(o)) => op == o,
        _ => false,
    }
}

/// The metric label of a peer component (`attention/decode/ctx2048`, `ffn/prefill/t512`,
/// `rmsnorm/t1`).
fn component_metric(what: &PeerCase) -> Option<String> {
    match what {
        PeerCase::Attention { .. }
        | PeerCase::Ffn { .. }
        | PeerCase::QuantMatmul { .. }
        | PeerCase::SmallOp(SmallOp::RmsNorm { .. } | SmallOp::LmHead { .. }) => {
            Some(what.to_string())
        }
        PeerCase::SmallOp(_) | PeerCase::Workload(_) => None,
    }
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
                        values: [None; N],
                        notes: Default::default(),
                        dtypes: Default::default(),
                        threads: Default::default(),
                    },
                )
            });
        row.values[column(Some(*engine))] = c.median_ns().map(|n| n / 1e3);
        row.dtypes[column(Some(*engine))] = Some(computed_dtype(c));
        row.threads[column(Some(*engine))] = threads_of(c);
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
            let engine_case = cases.iter().find(|c| c.case == case);
            row.dtypes[0] = engine_case.map(computed_dtype);
            row.threads[0] = engine_case.and_then(threads_of);
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

/// `f16 / f32 / —`: the dtype of each shown engine's value (blank when none recorded one).
fn dtypes(row: &Row, engines: &[usize]) -> String {
    if engines.iter().all(|&i| row.dtypes[i].is_none()) {
        return String::new();
    }
    engines
        .iter()
        .map(|&i| row.dtypes[i].clone().unwrap_or_else(|| "—".into()))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn ratio(v: Option<f64>) -> String {
    v.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "—".into())
}

/// The header of a table: `lead` columns, one per shown engine, one ratio per shown peer,
/// then `tail` columns.
fn header(lead: &[&str], engines: &[usize], tail: &[&str]) -> Vec<String> {
    let mut h: Vec<String> = lead.iter().map(|s| s.to_string()).collect();
    h.extend(engines.iter().map(|&i| format!("{}>", ENGINES[i])));
    h.extend(
        engines
            .iter()
            .filter(|&&i| i > 0)
            .map(|&i| format!("× vs {}>", ENGINES[i])),
    );
    h.extend(tail.iter().map(|s| s.to_string()));
    h
}

/// A row's values and ratios for the shown engines.
fn cells(row: &Row, engines: &[usize]) -> Vec<String> {
    let mut c: Vec<String> = engines.iter().map(|&i| fmt(row.values[i])).collect();
    c.extend(
        engines
            .iter()
            .filter(|&&i| i > 0)
            .map(|&i| ratio(row.advantage(i))),
    );
    c
}

/// The end-to-end rows of one model as a table, with a column per engine of `engines`.
pub fn e2e_table(rows: &[&Row], engines: &[usize]) -> Table {
    let h = header(&["metric", "unit"], engines, &["dtypes"]);
    let mut t = Table::new(&h.iter().map(String::as_str).collect::<Vec<_>>());
    for row in rows {
        let mut c = vec![row.metric.clone(), row.unit.clone()];
        c.extend(cells(row, engines));
        c.push(dtypes(row, engines));
        t.push(c);
    }
    t
}

/// The component rows of one preset as a table, with a column per engine of `engines`.
/// A `threads` column (each shown engine's count, `—` where not recorded) is added when a
/// row recorded any.
pub fn component_table(rows: &[&Row], engines: &[usize]) -> Table {
    let with_threads = rows
        .iter()
        .any(|r| engines.iter().any(|&i| r.threads[i].is_some()));
    let tail: &[&str] = if with_threads {
        &["mistral.rs case", "threads"]
    } else {
        &["mistral.rs case"]
    };
    let h = header(&["component"], engines, tail);
    let mut t = Table::new(&h.iter().map(String::as_str).collect::<Vec<_>>());
    for row in rows {
        let mut c = vec![row.metric.clone()];
        c.extend(cells(row, engines));
        c.push(format!("`{}`", row.notes[0].clone().unwrap_or_default()));
        if with_threads {
            c.push(
                engines
                    .iter()
                    .map(|&i| row.threads[i].map_or("—".into(), |n| n.to_string()))
                    .collect::<Vec<_>>()
                    .join(" / "),
            );
        }
        t.push(c);
    }
    t
}

/// llama-bench's own records as it would print them (test, t/s ± sd), with the settings
/// each ran with.
pub fn llama_bench_table(run: &ToolRun) -> Table {
    let mut t = Table::new(&[
        "model",
        "test",
        "t/s>",
        "± sd>",
        "threads>",
        "n_batch / n_ubatch",
        "flash_attn",
        "KV type",
        "n_gpu_layers>",
    ]);
    for r in &run.records {
        let u = |k: &str| r.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        let f = |k: &str| r.get(k).and_then(|v| v.as_f64());
        let st = |k: &str| match r.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) if !v.is_null() => v.to_string(),
            _ => "?".into(),
        };
        let (np, ng, d) = (u("n_prompt"), u("n_gen"), u("n_depth"));
        let mut test = match (np, ng) {
            (p, 0) => format!("pp{p}"),
            (0, g) => format!("tg{g}"),
            (p, g) => format!("pp{p}+tg{g}"),
        };
        if d > 0 {
            test.push_str(&format!(" @ d{d}"));
        }
        t.push([
            st("model_type"),
            test,
            fmt(f("avg_ts")),
            fmt(f("stddev_ts")),
            st("n_threads"),
            format!("{} / {}", st("n_batch"), st("n_ubatch")),
            st("flash_attn"),
            format!("{} / {}", st("type_k"), st("type_v")),
            st("n_gpu_layers"),
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
    for &i in &r.engines {
        if let Some(b) = &r.builds[i] {
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
        s.push_str(&e2e_table(&rows, &r.engines).markdown());
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
        s.push_str(&component_table(&rows, &r.engines).markdown());
    }
    for run in r.tool_runs.iter().filter(|t| t.tool == "llama-bench") {
        s.push_str(&format!(
            "\n### llama-bench, as it reports (mean t/s of its repetitions)\n\n`{}`\n\n",
            run.command
        ));
        s.push_str(&llama_bench_table(run).markdown());
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
    let series: Vec<(&str, usize)> = r.engines.iter().map(|&i| (ENGINES[i], i)).collect();
    let shown =
        |v: &[Option<f64>; N]| -> Vec<Option<f64>> { r.engines.iter().map(|&i| v[i]).collect() };
    // tokens/s: prefill 512 and decode at depth 0, per model
    let mut labels = Vec::new();
    let mut vals = Vec::new();
    for row in r.e2e.iter().filter(|x| {
        x.unit == "tok/s" && (x.metric == "prefill/pp512" || x.metric == "decode/depth0")
    }) {
        labels.push(format!("{} {}", short(&row.subject), row.metric));
        vals.push(shown(&row.values));
    }
    if !labels.is_empty() {
        super::plot::bar_chart(
            &out.join("tokens-per-s.svg"),
            "Tokens per second (log scale)",
            "tok/s",
            &series,
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
        let vals: Vec<Vec<Option<f64>>> = sel.iter().map(|x| shown(&x.values)).collect();
        super::plot::bar_chart(&out.join(file), title, unit, &series, &labels, &vals, log)?;
        plots.push((file, title));
    }
    if !r.components.is_empty() {
        let labels: Vec<String> = r
            .components
            .iter()
            .map(|x| x.metric.replace("attention/", "attn "))
            .collect();
        let vals: Vec<Vec<Option<f64>>> = r.components.iter().map(|x| shown(&x.values)).collect();
        super::plot::bar_chart(
            &out.join("components.svg"),
            "Components: median µs per call (log scale)",
            "µs",
            &series,
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
