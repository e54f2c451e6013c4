//! The summary as tables: the cases of a run, the whole summary by group, the context
//! slopes. Each is a [`Table`]; the Markdown helpers add the lines a reader needs around it.

use super::schema::{CaseSummary, Summary};
use crate::device::ceilings::Ceilings;
use crate::device::insitu::Breakdown;
use crate::util::{fmt::fmt_ns, table::Table};

/// One row per case: median, MAD, tokens/s, GB/s, %BW, GFLOP/s, %FLOP, a note (status and
/// reason, quantization error, the format really stored).
pub fn cases_table(cases: &[CaseSummary]) -> Table {
    let mut t = Table::new(&[
        "case", "median>", "±MAD>", "tok/s>", "GB/s>", "%BW>", "GFLOP/s>", "%FLOP>", "note",
    ]);
    for c in cases {
        let mut note = match (&c.reason, c.extra.get("rel_error")) {
            (Some(r), _) => format!("{}: {}", c.status, r),
            (None, Some(e)) => {
                format!("rel. error {:.3} %", e.as_f64().unwrap_or(f64::NAN) * 100.0)
            }
            _ => String::new(),
        };
        if let Some(f) = c.extra.get("effective_format").and_then(|f| f.as_str()) {
            if c.extra.get("format").and_then(|x| x.as_str()) != Some(f) {
                note.push_str(&format!(" (stored as {f})"));
            }
        }
        if c.stand_in.is_some() {
            note.push_str(if note.is_empty() {
                "stand-in"
            } else {
                " (stand-in)"
            });
        }
        match c.estimates {
            Some(e) => {
                let cache_mark = if c.fits_in_cache == Some(true) {
                    "ᶜ"
                } else {
                    ""
                };
                t.push([
                    c.case.clone(),
                    fmt_ns(e.median_ns),
                    fmt_ns(e.mad_ns),
                    c.tokens_per_s
                        .map(|t| format!("{t:.1}"))
                        .unwrap_or_default(),
                    format!("{:.2}", c.gbps.unwrap_or(0.0)),
                    c.pct_bw_ceiling
                        .map(|p| format!("{p:.1}{cache_mark}"))
                        .unwrap_or_default(),
                    format!("{:.2}", c.gflops.unwrap_or(0.0)),
                    c.pct_flop_ceiling
                        .map(|p| format!("{p:.1}"))
                        .unwrap_or_default(),
                    note,
                ]);
            }
            None => t.push([
                c.case.clone(),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
                note,
            ]),
        }
    }
    t
}

/// The cases table in Markdown, with the ceilings above it and the cache mark explained.
pub fn cases_markdown(cases: &[CaseSummary], ceil: Option<&Ceilings>) -> String {
    let mut o = String::new();
    if let Some(c) = ceil {
        o.push_str(&format!(
            "\nCeilings on {}: copy {:.1} GB/s, {} matmul {:.1} GFLOP/s\n",
            c.device_name, c.copy_gbps, c.matmul_dtype, c.matmul_gflops
        ));
    }
    if cases.iter().any(|c| c.fits_in_cache == Some(true)) {
        o.push_str(
            "\n(ᶜ: the case's bytes fit in the last-level cache; its %BW is against DRAM bandwidth)\n",
        );
    }
    if cases.iter().any(|c| c.stand_in.is_some()) {
        o.push_str(
            "\n(stand-in: not the path the engine runs on this device; the summary's `stand_in` says which it runs)\n",
        );
    }
    o.push('\n');
    o.push_str(&cases_table(cases).markdown());
    o
}

/// A Markdown report of a whole summary: device, ceilings, one table per group.
pub fn report(s: &Summary) -> String {
    let mut o = format!(
        "Device: {} ({}), mistral.rs {}, written {}.\nRun profile: {}.\n",
        s.device_name, s.device, s.mistralrs_version, s.written_at, s.profile
    );
    match &s.build {
        Some(b) => o.push_str(&format!("Build: {}.\n", b.describe())),
        None => o.push_str("Build: not recorded (a summary from before builds were recorded).\n"),
    }
    if let Some(c) = &s.ceilings {
        o.push_str(&format!(
            "Ceilings: copy {:.1} GB/s ({} MiB buffer), {} {}³ matmul {:.1} GFLOP/s (measured {}).\n",
            c.copy_gbps,
            c.copy_bytes >> 20,
            c.matmul_dtype,
            c.matmul_n,
            c.matmul_gflops,
            c.measured_at
        ));
    }
    let mut groups: Vec<&str> = Vec::new();
    for c in &s.cases {
        if !groups.contains(&c.group.as_str()) {
            groups.push(&c.group);
        }
    }
    for g in groups {
        let cases: Vec<CaseSummary> = s.cases.iter().filter(|c| c.group == g).cloned().collect();
        o.push_str(&format!("\n### {g}\n\n"));
        o.push_str(&cases_table(&cases).markdown());
    }
    o.push_str(&insitu_markdown(&s.cases));
    o
}

/// The context slopes of [`super::derive::derive`], one row per model (empty when none).
pub fn slopes_table(derived: &serde_json::Value) -> Table {
    let mut t = Table::new(&[
        "model",
        "decode ms/token by depth",
        "engine slope (ms per 1k ctx)>",
        "components: attention slope x layers>",
    ]);
    let Some(m) = derived["context_slope"].as_object() else {
        return t;
    };
    let f = |x: &serde_json::Value| {
        x.as_f64()
            .map(|x| format!("{x:.3}"))
            .unwrap_or_else(|| "–".into())
    };
    for (model, v) in m {
        let pts: Vec<String> = v["decode_ms_per_token"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        format!(
                            "{}: {:.2}",
                            p["depth"],
                            p["ms"].as_f64().unwrap_or(f64::NAN)
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        t.push([
            model.clone(),
            pts.join(", "),
            f(&v["engine_slope_ms_per_1k_ctx"]),
            f(&v["component_attention_slope_ms_per_1k_ctx"]),
        ]);
    }
    t
}

/// A case's name and its in-situ breakdown, for the tables below.
pub type Split<'a> = (&'a str, &'a Breakdown);

/// The cases that have a breakdown, as [`Split`]s.
pub fn splits(cases: &[CaseSummary]) -> Vec<Split<'_>> {
    cases
        .iter()
        .filter_map(|c| c.insitu.as_ref().map(|b| (c.case.as_str(), b)))
        .collect()
}

/// The in-situ breakdowns of the cases that have one: one row per case and part (time per
/// unit, share of the engine thread's wall time, share of all threads' CPU time).
pub fn insitu_parts_table(cases: &[CaseSummary]) -> Table {
    parts_table(&splits(cases))
}

/// [`insitu_parts_table`] of named breakdowns (on a GPU, wall % is the device timeline's and
/// the CPU columns are empty). `queued` is run-queue delay per unit: the engine thread's
/// own in the part, and the pool threads' while the engine thread was in it.
pub fn parts_table(rows: &[Split]) -> Table {
    let mut t = Table::new(&[
        "case",
        "part",
        "ms/unit>",
        "wall %>",
        "cpu %>",
        "queued ms/unit>",
        "pool queued ms/unit>",
    ]);
    for (case, b) in rows {
        let mut parts = b.parts.clone();
        parts.sort_by(|x, y| y.wall_share.total_cmp(&x.wall_share));
        let cpu_only = |x: String| if b.gpu.is_some() { String::new() } else { x };
        let per_unit = |s: f64| format!("{:.3}", s / b.units.max(1) as f64 * 1e3);
        for p in parts {
            t.push([
                case.to_string(),
                p.part.to_string(),
                format!("{:.3}", p.per_unit_ms),
                format!("{:.1}", p.wall_share * 100.0),
                cpu_only(format!("{:.1}", p.cpu_share * 100.0)),
                cpu_only(per_unit(p.wait_s)),
                cpu_only(per_unit(p.pool_wait_s)),
            ]);
        }
    }
    t
}

/// The checks of each in-situ breakdown: time per unit with and without the sampler (its
/// overhead), against the suite's own figure, how fully the ticks cover the timed time, and
/// what no rule explains.
pub fn insitu_checks_table(cases: &[CaseSummary]) -> Table {
    checks_table(&splits(cases))
}

/// [`insitu_checks_table`] of named breakdowns.
pub fn checks_table(rows: &[Split]) -> Table {
    let mut t = Table::new(&[
        "case",
        "unit",
        "ms/unit>",
        "without>",
        "overhead %>",
        "vs suite %>",
        "coverage %>",
        "unassigned wall %>",
        "unassigned cpu %>",
        "engine queued %>",
        "ticks>",
    ]);
    let opt = |v: Option<f64>, d: usize| v.map(|x| format!("{x:.d$}")).unwrap_or_default();
    for (case, b) in rows {
        t.push([
            case.to_string(),
            b.unit.clone(),
            format!("{:.3}", b.per_unit_ms),
            opt(b.without_ms, 3),
            opt(b.overhead_pct, 1),
            opt(b.vs_suite_pct, 1),
            format!("{:.1}", b.coverage * 100.0),
            format!("{:.1}", b.unassigned_wall * 100.0),
            if b.gpu.is_some() {
                String::new()
            } else {
                format!("{:.1}", b.unassigned_cpu * 100.0)
            },
            opt(b.engine_wait_share.map(|x| x * 100.0), 1),
            b.ticks.to_string(),
        ]);
    }
    t
}

/// The device side of GPU breakdowns: busy and idle time, the idle gaps, where the host was
/// while the device idled.
pub fn gpu_table(rows: &[Split]) -> Table {
    let mut t = Table::new(&[
        "case",
        "kernels/unit>",
        "busy %>",
        "idle %>",
        "idle gaps/unit>",
        "longest gap µs>",
        "host during idle",
        "dropped>",
    ]);
    for (case, b) in rows {
        let Some(g) = &b.gpu else { continue };
        let w = (g.busy_s + g.idle_s).max(1e-12);
        let per = |n: u64| n as f64 / b.units.max(1) as f64;
        let host: Vec<String> = g
            .idle_host
            .iter()
            .take(4)
            .map(|(p, x)| format!("{p} {:.0} %", x * 100.0))
            .collect();
        t.push([
            case.to_string(),
            format!("{:.1}", per(g.kernels)),
            format!("{:.1}", g.busy_s / w * 100.0),
            format!("{:.1}", g.idle_s / w * 100.0),
            format!("{:.1}", per(g.idle_gaps)),
            format!("{:.0}", g.longest_gap_us),
            format!("{} ({} ticks)", host.join(", "), g.idle_ticks),
            g.dropped.to_string(),
        ]);
    }
    t
}

/// The kernels that took the most device time, per case (at most `n` each).
pub fn kernels_table(rows: &[Split], n: usize) -> Table {
    let mut t = Table::new(&[
        "case",
        "kernel",
        "part",
        "count/unit>",
        "µs/unit>",
        "share %>",
    ]);
    for (case, b) in rows {
        let Some(g) = &b.gpu else { continue };
        let w = (g.busy_s + g.idle_s).max(1e-12);
        for k in g.top_kernels.iter().take(n) {
            let mut name = k.name.clone();
            if name.chars().count() > 60 {
                name = name.chars().take(57).collect::<String>() + "...";
            }
            t.push([
                case.to_string(),
                format!("`{name}`"),
                k.part.to_string(),
                format!("{:.1}", k.count as f64 / b.units.max(1) as f64),
                format!("{:.1}", k.s / b.units.max(1) as f64 * 1e6),
                format!("{:.1}", k.s / w * 100.0),
            ]);
        }
    }
    t
}

/// The copies and memsets that took the most device time, per case (at most `n` each).
pub fn copies_table(rows: &[Split], n: usize) -> Table {
    let mut t = Table::new(&[
        "case",
        "copy",
        "bytes>",
        "count/unit>",
        "µs each>",
        "share %>",
    ]);
    for (case, b) in rows {
        let Some(g) = &b.gpu else { continue };
        let w = (g.busy_s + g.idle_s).max(1e-12);
        for c in g.top_copies.iter().take(n) {
            t.push([
                case.to_string(),
                format!("{:?}", c.kind),
                c.bytes.to_string(),
                format!("{:.2}", c.count as f64 / b.units.max(1) as f64),
                format!("{:.1}", c.s / c.count.max(1) as f64 * 1e6),
                format!("{:.1}", c.s / w * 100.0),
            ]);
        }
    }
    t
}

/// Both in-situ tables in Markdown, with the lines a reader needs (empty: no breakdowns).
pub fn insitu_markdown(cases: &[CaseSummary]) -> String {
    markdown_of(&splits(cases))
}

/// [`insitu_markdown`] of named breakdowns; GPU ones add the device table and the top
/// kernels.
pub fn markdown_of(rows: &[Split]) -> String {
    let parts = parts_table(rows);
    if parts.is_empty() {
        return String::new();
    }
    let engine = rows
        .first()
        .map(|(_, b)| format!("{} (rules for {})", b.engine, b.rules))
        .unwrap_or_default();
    let mut o = format!(
        "\n### In situ: the engine's own run by part ({engine})\n\n{}\n{}",
        parts.markdown(),
        checks_table(rows).markdown()
    );
    let gpu = gpu_table(rows);
    if !gpu.is_empty() {
        o.push_str(&format!(
            "\nDevice timeline (CUPTI): parts are device time; idle is time with no kernel \
             or copy, split by the host engine thread's part at the sampler's ticks in it.\n\n{}\n{}",
            gpu.markdown(),
            kernels_table(rows, 12).markdown()
        ));
        let copies = copies_table(rows, 3);
        if !copies.is_empty() {
            o.push_str(&format!("\n{}", copies.markdown()));
        }
    }
    o
}
