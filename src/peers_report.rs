//! The peers report (issue 6): mistral.rs beside candle and PyTorch eager, from summary files
//! of one run (the suite's own summary holds mistral.rs and candle; `scripts/peers/
//! torch_peers.py` writes PyTorch's in the same schema). Markdown tables with ratios, a JSON
//! copy, and SVG plots (plotters).
//!
//! Ratios are "mistral.rs advantage": how many times faster (or smaller) mistral.rs is than
//! the peer on that row; below 1 the peer wins.

use crate::summary::{CaseSummary, Summary};
use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const ENGINES: [&str; 3] = ["mistral.rs", "candle", "PyTorch"];

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
}

/// Which engine ran a case, and its id with the engine prefix removed.
fn split(c: &CaseSummary) -> Option<(usize, String)> {
    if c.group == "peers" {
        let rest = c.case.strip_prefix("peers/")?;
        let (eng, tail) = rest.split_once('/')?;
        let i = match eng {
            "candle" => 1,
            "torch" => 2,
            _ => return None,
        };
        return Some((i, tail.to_string()));
    }
    Some((0, c.case.clone()))
}

fn median_ns(c: &CaseSummary) -> Option<f64> {
    c.estimates.map(|e| e.median_ns).filter(|m| *m > 0.0)
}

/// Reads summary files and builds the report.
pub fn build(files: &[PathBuf]) -> Result<Report> {
    let mut cases = Vec::new();
    let mut device_names = BTreeMap::new();
    for f in files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("{}: cannot read", f.display()))?;
        let s: Summary = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a summary file", f.display()))?;
        device_names.insert(s.device.clone(), s.device_name.clone());
        cases.extend(s.cases.into_iter().filter(|c| c.status == "ok"));
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
    })
}

/// End-to-end rows per model that at least one peer ran.
fn e2e_rows(cases: &[CaseSummary]) -> Vec<Row> {
    // (model, kind) -> engine -> case
    let mut by: BTreeMap<(String, String), [Option<&CaseSummary>; 3]> = BTreeMap::new();
    for c in cases {
        let Some((eng, id)) = split(c) else { continue };
        let id = if eng == 0 {
            match id.strip_prefix("generation/") {
                Some(r) => r.to_string(),
                None => continue,
            }
        } else if is_component(&id) {
            continue;
        } else {
            id
        };
        let Some(pos) = ["/prefill/", "/decode/", "/concurrent/", "/ttft/"]
            .iter()
            .filter_map(|k| id.find(k))
            .min()
        else {
            continue;
        };
        let (model, kind) = (id[..pos].to_string(), id[pos + 1..].to_string());
        by.entry((model, kind)).or_default()[eng] = Some(c);
    }
    let models: Vec<String> = {
        let mut m: Vec<String> = by
            .iter()
            .filter(|(_, v)| v[1].is_some() || v[2].is_some())
            .map(|((m, _), _)| m.clone())
            .collect();
        m.dedup();
        m
    };
    let mut rows = Vec::new();
    for model in models {
        let kinds: Vec<(&String, &[Option<&CaseSummary>; 3])> = by
            .iter()
            .filter(|((m, _), _)| *m == model)
            .map(|((_, k), v)| (k, v))
            .collect();
        let get = |kind: &str| -> [Option<&CaseSummary>; 3] {
            kinds
                .iter()
                .find(|(k, _)| k.as_str() == kind)
                .map(|(_, v)| **v)
                .unwrap_or_default()
        };
        let mut ordered: Vec<&String> = kinds.iter().map(|(k, _)| *k).collect();
        ordered.sort_by_key(|k| {
            let n: usize = k
                .rsplit(|ch: char| !ch.is_ascii_digit())
                .next()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
            let rank = ["prefill", "ttft", "decode", "concurrent"]
                .iter()
                .position(|p| k.starts_with(p))
                .unwrap_or(9);
            (rank, n)
        });
        for kind in ordered {
            if kind.starts_with("ttft") {
                continue;
            }
            let v = get(kind);
            if v[1].is_none() && v[2].is_none() {
                continue;
            }
            rows.push(Row {
                subject: model.clone(),
                metric: kind.replace("tg128/", ""),
                unit: "tok/s".into(),
                better: Better::Higher,
                values: v.map(|c| c.and_then(|c| c.tokens_per_s)),
                notes: Default::default(),
            });
        }
        // Time to first token: the engine's own TTFT case; the peers have no request path,
        // so theirs is the 128-token forward pass plus the first token (their pp128 case).
        let t = get("ttft/pp128");
        let p = get("prefill/pp128");
        rows.push(Row {
            subject: model.clone(),
            metric: "time to first token, 128-token prompt".into(),
            unit: "ms".into(),
            better: Better::Lower,
            values: [
                t[0].and_then(median_ns).map(|n| n / 1e6),
                p[1].and_then(median_ns).map(|n| n / 1e6),
                p[2].and_then(median_ns).map(|n| n / 1e6),
            ],
            notes: [
                Some("ttft/pp128 request".into()),
                Some("prefill/pp128 forward".into()),
                Some("prefill/pp128 forward".into()),
            ],
        });
        let d0 = get("decode/tg128/depth0");
        for (q, label) in [("p50", "median"), ("p99", "p99")] {
            rows.push(Row {
                subject: model.clone(),
                metric: format!("inter-token latency {label}, depth 0"),
                unit: "ms".into(),
                better: Better::Lower,
                values: d0.map(|c| c.and_then(|c| c.extra.get("itl_ms")?.get(q)?.as_f64())),
                notes: Default::default(),
            });
        }
        let mut mem: [Option<f64>; 3] = [None; 3];
        let mut kind_note: [Option<String>; 3] = Default::default();
        for (_, v) in &kinds {
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
        });
    }
    rows
}

/// The components the peers time (`<preset>/<component>/…`).
const COMPONENTS: [&str; 4] = ["attention", "ffn", "rmsnorm", "lm_head"];

fn is_component(id: &str) -> bool {
    id.split('/')
        .nth(1)
        .is_some_and(|c| COMPONENTS.contains(&c))
}

/// Component rows: the peers' component ids, against the engine's matching case (the
/// fastest attention path the engine has for that shape, named in the notes).
fn component_rows(cases: &[CaseSummary]) -> Vec<Row> {
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    for c in cases {
        let Some((eng, id)) = split(c) else { continue };
        if eng == 0 {
            continue;
        }
        let parts: Vec<&str> = id.splitn(3, '/').collect();
        if parts.len() < 3 || !is_component(&id) {
            continue;
        }
        let (preset, key) = (parts[0].to_string(), format!("{}/{}", parts[1], parts[2]));
        let row = rows
            .entry((preset.clone(), key.clone()))
            .or_insert_with(|| Row {
                subject: preset.clone(),
                metric: key.clone(),
                unit: "µs".into(),
                better: Better::Lower,
                values: [None; 3],
                notes: Default::default(),
            });
        row.values[eng] = median_ns(c).map(|n| n / 1e3);
    }
    for ((preset, key), row) in rows.iter_mut() {
        // the engine's counterpart
        let (comp, rest) = key.split_once('/').unwrap_or((key, ""));
        let mut best: Option<(f64, String)> = None;
        for c in cases.iter().filter(|c| c.preset == *preset) {
            let Some(m) = median_ns(c) else { continue };
            let hit = match comp {
                "attention" => {
                    // attention/<p>/<phase>/<path>/ctxN vs <phase>/ctxN
                    let (phase, ctx) = rest.split_once('/').unwrap_or((rest, ""));
                    let pre = format!("attention/{preset}/{phase}/");
                    c.case.starts_with(&pre) && c.case.ends_with(&format!("/{ctx}"))
                }
                "ffn" => c.group == "ffn" && c.case.contains("/float/") && c.case.ends_with(rest),
                _ => c.case == format!("small_ops/{preset}/{key}"),
            };
            if hit && best.as_ref().is_none_or(|(b, _)| m < *b) {
                best = Some((m, c.case.clone()));
            }
        }
        if let Some((m, case)) = best {
            row.values[0] = Some(m / 1e3);
            row.notes[0] = Some(case);
        }
    }
    rows.into_values().collect()
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) if x >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

fn ratio(v: Option<f64>) -> String {
    v.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "—".into())
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
    s.push_str(
        "\"× vs\" columns: mistral.rs advantage (peer time ÷ mistral.rs time, or mistral.rs \
         tok/s ÷ peer tok/s); below 1.00× the peer is faster.\n\n",
    );
    let mut subject = String::new();
    for row in &r.e2e {
        if row.subject != subject {
            subject = row.subject.clone();
            s.push_str(&format!(
                "\n### End to end: {subject}\n\n| metric | unit | mistral.rs | candle | PyTorch | × vs candle | × vs PyTorch |\n|---|---|---:|---:|---:|---:|---:|\n"
            ));
        }
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            row.metric,
            row.unit,
            fmt(row.values[0]),
            fmt(row.values[1]),
            fmt(row.values[2]),
            ratio(row.advantage(1)),
            ratio(row.advantage(2)),
        ));
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
    subject.clear();
    for row in &r.components {
        if row.subject != subject {
            subject = row.subject.clone();
            s.push_str(&format!(
                "\n### Components: {subject} (median µs per call)\n\n| component | mistral.rs | candle | PyTorch | × vs candle | × vs PyTorch | mistral.rs case |\n|---|---:|---:|---:|---:|---:|---|\n"
            ));
        }
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | `{}` |\n",
            row.metric,
            fmt(row.values[0]),
            fmt(row.values[1]),
            fmt(row.values[2]),
            ratio(row.advantage(1)),
            ratio(row.advantage(2)),
            row.notes[0].clone().unwrap_or_default(),
        ));
    }
    s
}

const COLORS: [plotters::style::RGBColor; 3] = [
    plotters::style::RGBColor(214, 96, 39),   // mistral.rs
    plotters::style::RGBColor(60, 110, 180),  // candle
    plotters::style::RGBColor(120, 120, 120), // PyTorch
];

/// A grouped bar chart: one group per label, one bar per engine (absent values leave a gap).
pub fn bar_chart(
    path: &Path,
    title: &str,
    y_desc: &str,
    labels: &[String],
    values: &[[Option<f64>; 3]],
    log: bool,
) -> Result<()> {
    use plotters::prelude::*;
    // room for each group's label (about 7 px per character at the axis font)
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(10);
    let per_group = (longest as u32 * 7 + 30).max(150);
    let w = per_group * labels.len().max(3) as u32 + 120;
    let root = SVGBackend::new(path, (w.min(4000), 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let vmax = values
        .iter()
        .flatten()
        .flatten()
        .fold(0f64, |a, &b| a.max(b))
        .max(1e-9);
    let vmin = values
        .iter()
        .flatten()
        .flatten()
        .fold(f64::INFINITY, |a, &b| a.min(b));
    let n = labels.len() as f64;
    let draw = |chart_lo: f64, chart_hi: f64, log: bool| -> Result<()> {
        let mut b = ChartBuilder::on(&root);
        b.caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(70)
            .y_label_area_size(80);
        let label_of = |x: &f64| -> String {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        };
        macro_rules! body {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .x_labels(labels.len() + 1)
                    .x_label_formatter(&label_of)
                    .y_desc(y_desc)
                    .draw()
                    .map_err(|e| anyhow!("{e}"))?;
                let bw = 0.8 / 3.0;
                for (e, name) in ENGINES.iter().enumerate() {
                    let color = COLORS[e];
                    let bars: Vec<Rectangle<(f64, f64)>> = values
                        .iter()
                        .enumerate()
                        .filter_map(|(g, v)| {
                            let y = v[e]?;
                            let x0 = g as f64 - 0.4 + e as f64 * bw;
                            Some(Rectangle::new(
                                [(x0, chart_lo), (x0 + bw * 0.92, y)],
                                color.filled(),
                            ))
                        })
                        .collect();
                    chart
                        .draw_series(bars)
                        .map_err(|e| anyhow!("{e}"))?
                        .label(*name)
                        .legend(move |(x, y)| {
                            Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                        });
                }
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.mix(0.9))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| anyhow!("{e}"))?;
            }};
        }
        if log {
            body!(b
                .build_cartesian_2d(-0.5f64..n - 0.5, (chart_lo..chart_hi).log_scale())
                .map_err(|e| anyhow!("{e}"))?);
        } else {
            body!(b
                .build_cartesian_2d(-0.5f64..n - 0.5, chart_lo..chart_hi)
                .map_err(|e| anyhow!("{e}"))?);
        }
        Ok(())
    };
    if log {
        let lo = 10f64.powf((vmin.max(1e-9)).log10().floor());
        draw(lo, vmax * 3.0, true)?;
    } else {
        draw(0.0, vmax * 1.2, false)?;
    }
    root.present()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(())
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
        bar_chart(
            &out.join("tokens-per-s.svg"),
            "Tokens per second (log scale)",
            "tok/s",
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
        bar_chart(&out.join(file), title, unit, &labels, &vals, log)?;
        plots.push((file, title));
    }
    if !r.components.is_empty() {
        let labels: Vec<String> = r
            .components
            .iter()
            .map(|x| x.metric.replace("attention/", "attn "))
            .collect();
        let vals: Vec<[Option<f64>; 3]> = r.components.iter().map(|x| x.values).collect();
        bar_chart(
            &out.join("components.svg"),
            "Components: median µs per call (log scale)",
            "µs",
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
