//! `mistral-rs-bench`: with no subcommand, the JSON-in/JSON-out generation benchmark
//! (`echo '{"prompt":"Hello","iterations":50}' | mistral-rs-bench`); subcommands for the
//! suite's helpers.

use anyhow::Result;
use clap::{Parser, Subcommand};
use mistral_rs_bench::{case::Ctx, ceilings, config::Models, device, jsonbench, parts, synth};
use std::io::Read;

#[derive(Parser)]
#[command(
    name = "mistral-rs-bench",
    version,
    about = "Benchmarks of the mistral.rs LLM engine (JSON on stdin, JSON on stdout)",
    after_long_help = jsonbench::PROTOCOL_HELP,
    after_help = "Run with --help for the JSON protocol."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Measure (or show cached) device ceilings: copy bandwidth and matmul rate.
    Ceilings {
        /// Measure again even if a cached measurement exists.
        #[arg(long)]
        fresh: bool,
    },
    /// List the component cases of the selected presets with their cost, as JSON lines.
    Cases,
    /// Time component cases with the suite's clock and with CUDA events (CUDA builds).
    Fidelity {
        /// Substrings of case ids (e.g. `small_ops/smollm2-135m/rmsnorm/t1`).
        #[arg(required = true)]
        cases: Vec<String>,
        /// Iterations per sample.
        #[arg(long, default_value_t = 100)]
        iters: u64,
        /// Samples per clock.
        #[arg(long, default_value_t = 21)]
        samples: usize,
    },
    /// Compare two result sets (a saved baseline or a Criterion folder): regression or noise.
    /// Exit 1 if any case regressed, 2 on bad input.
    Compare {
        /// Baseline: a folder, or a machine name under target-baselines/.
        baseline: String,
        /// Candidate: a folder (default: this run's target/criterion).
        candidate: Option<String>,
        /// Minimum effect size in %: smaller changes are noise however clear.
        #[arg(long, default_value_t = mistral_rs_bench::compare::DEFAULT_THRESHOLD_PCT)]
        threshold: f64,
        /// Also write compare.md, github-action-benchmark.json and bencher.json here.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Save this run's results as target-baselines/<MACHINE>/ (refuses to overwrite).
    SaveBaseline {
        /// Hardware class, e.g. cpu-2core, cuda-h100.
        machine: String,
        /// Replace an existing baseline.
        #[arg(long)]
        force: bool,
        /// The command that produced the results (recorded in metadata.json).
        #[arg(long)]
        command: Option<String>,
    },
    /// Add another run's cases (same card class, e.g. a second lent GPU) to a saved baseline:
    /// cases it lacks are added (tagged with --machine); existing ones are kept unless --replace.
    MergeBaseline {
        /// The baseline: a folder, or a machine name under target-baselines/.
        baseline: String,
        /// The run's Criterion folder (its `criterion/`).
        #[arg(long)]
        criterion: std::path::PathBuf,
        /// The run's summary JSON.
        #[arg(long)]
        summary: std::path::PathBuf,
        /// A tag for the machine of that run (stored in each merged case).
        #[arg(long)]
        machine: String,
        /// Replace cases the baseline already has.
        #[arg(long)]
        replace: bool,
    },
    /// A differential flamegraph from two profile.folded files (red: grew, blue: shrank).
    Flamediff {
        before: std::path::PathBuf,
        after: std::path::PathBuf,
        /// Output SVG.
        out: std::path::PathBuf,
    },
    /// The decode-step budget: component medians of one decode step vs the engine's ms/token.
    Budget {
        /// A preset of models.toml.
        preset: String,
        /// Summary JSON (default: target/mistral-rs-bench/summary-<device>.json).
        #[arg(long)]
        summary: Option<std::path::PathBuf>,
        /// Context depth (an attention decode context and an e2e decode depth).
        #[arg(long, default_value_t = 512)]
        context: usize,
        /// Weight class and format of the projections/FFN (`float/f32`, `q4/Q4K`, ...).
        #[arg(long, default_value = "float/f32")]
        format: String,
        /// Write the budget as JSON here too.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// Depth of the end-to-end decode case to compare with (default: --context).
        #[arg(long)]
        e2e_depth: Option<usize>,
        /// Substring of the end-to-end model (default: the preset's synthetic model, no ISQ).
        #[arg(long)]
        e2e_model: Option<String>,
    },
    /// Print a Markdown report of a summary file (target/mistral-rs-bench/summary-*.json).
    Report {
        /// The summary JSON.
        summary: std::path::PathBuf,
    },
    /// mistral.rs beside candle and PyTorch: Markdown, JSON and SVG plots from summary files
    /// of one machine (the suite's summary, and scripts/peers/torch_peers.py's).
    PeersReport {
        /// Summary JSON files (all from one device).
        #[arg(required = true)]
        summaries: Vec<std::path::PathBuf>,
        /// Folder for peers.md, peers.json and the SVG plots.
        #[arg(long, default_value = "target/mistral-rs-bench/peers")]
        out: std::path::PathBuf,
        /// Replace an existing report in --out.
        #[arg(long)]
        force: bool,
        /// Leave out the memory rows (runs whose footprints are known to be confounded).
        #[arg(long)]
        no_memory: bool,
    },
    /// Write the synthetic model of a preset (HF layout) and print its folder.
    Synth {
        /// A preset of models.toml.
        preset: String,
        /// dtype of the weights (default: the preset's).
        #[arg(long)]
        dtype: Option<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        None => json_mode(),
        Some(cmd) => match helper(cmd) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("mistral-rs-bench: {e:#}");
                2
            }
        },
    };
    // Exit without waiting for engine threads (a hung GPU must not hang the process).
    std::process::exit(code);
}

fn json_mode() -> i32 {
    let mut input = String::new();
    let res = match std::io::stdin().read_to_string(&mut input) {
        Ok(_) => jsonbench::parse_request(&input).and_then(|req| jsonbench::run(&req)),
        Err(e) => Err(jsonbench::BenchError {
            kind: "invalid_input",
            err: anyhow::anyhow!("cannot read stdin: {e}"),
        }),
    };
    match res {
        Ok(doc) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("serializable")
            );
            0
        }
        Err(e) => {
            println!("{}", e.doc());
            eprintln!("mistral-rs-bench: {}: {:#}", e.kind, e.err);
            2
        }
    }
}

fn helper(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Ceilings { fresh } => {
            let dev = device::from_env()?;
            let c = if fresh {
                ceilings::measure(&dev)?
            } else {
                ceilings::get_or_measure(&dev)?
            };
            println!("{}", serde_json::to_string_pretty(&c)?);
        }
        Cmd::Cases => {
            let dev = device::from_env()?;
            let models = Models::load_default()?;
            for p in models.selected()? {
                let ctx = Ctx {
                    device: dev.clone(),
                    dtype: device::compute_dtype(&dev, p.dtype())?,
                };
                for (_, gen) in parts::ALL.iter().chain([&parts::GENERATION, &parts::PEERS]) {
                    for s in gen(&p, &ctx) {
                        let line = serde_json::json!({
                            "case": s.full_id(), "shape": s.shape, "flops": s.cost.flops,
                            "bytes": s.cost.bytes, "tokens": s.tokens,
                            "intensity": s.cost.intensity(), "skip": s.skip,
                        });
                        println!("{line}");
                    }
                }
            }
        }
        Cmd::Fidelity {
            cases,
            iters,
            samples,
        } => {
            let dev = device::from_env()?;
            let presets = Models::load_default()?.selected()?;
            let rows = mistral_rs_bench::fidelity::run(&presets, &dev, &cases, iters, samples)?;
            println!("| case | suite (sync + Instant) | CUDA events | difference |");
            println!("|---|---:|---:|---:|");
            for r in &rows {
                println!(
                    "| {} | {} | {} | {:+.2} % |",
                    r.case,
                    mistral_rs_bench::summary::fmt_ns(r.suite_ns),
                    mistral_rs_bench::summary::fmt_ns(r.events_ns),
                    r.diff_pct
                );
            }
            let out = mistral_rs_bench::summary::out_dir()
                .join(format!("fidelity-{}.json", device::label(&dev)));
            std::fs::create_dir_all(mistral_rs_bench::summary::out_dir())?;
            std::fs::write(&out, serde_json::to_string_pretty(&rows)?)?;
            eprintln!("written {}", out.display());
        }
        Cmd::Compare {
            baseline,
            candidate,
            threshold,
            out,
        } => {
            let base = mistral_rs_bench::baseline::resolve(&baseline);
            let cand = match candidate {
                Some(c) => mistral_rs_bench::baseline::resolve(&c),
                None => mistral_rs_bench::summary::criterion_dir(),
            };
            let (rows, unmatched) = mistral_rs_bench::compare::compare(&base, &cand, threshold)?;
            print!("{}", mistral_rs_bench::compare::markdown(&rows, threshold));
            for u in &unmatched {
                eprintln!("not compared: {u}");
            }
            if let Some(dir) = out {
                for p in mistral_rs_bench::compare::write_outputs(&rows, threshold, &dir)? {
                    eprintln!("written {}", p.display());
                }
            }
            if rows
                .iter()
                .any(|r| r.verdict == mistral_rs_bench::compare::Verdict::Regression)
            {
                std::process::exit(1);
            }
        }
        Cmd::SaveBaseline {
            machine,
            force,
            command,
        } => {
            let dest = mistral_rs_bench::baseline::save(&machine, force, command.as_deref())?;
            println!("{}", dest.display());
        }
        Cmd::MergeBaseline {
            baseline,
            criterion,
            summary,
            machine,
            replace,
        } => {
            let dir = mistral_rs_bench::baseline::resolve(&baseline);
            let m =
                mistral_rs_bench::baseline::merge(&dir, &criterion, &summary, &machine, replace)?;
            println!(
                "{}: {} added, {} replaced, {} kept",
                dir.display(),
                m.added,
                m.replaced,
                m.kept
            );
        }
        Cmd::Flamediff { before, after, out } => {
            mistral_rs_bench::flame::diff(
                &before,
                &after,
                &out,
                "mistral-rs-bench: differential flamegraph",
            )?;
            println!("{}", out.display());
        }
        Cmd::Budget {
            preset,
            summary,
            context,
            format,
            json,
            e2e_depth,
            e2e_model,
        } => {
            let dev = device::from_env()?;
            let path = summary.unwrap_or_else(|| {
                mistral_rs_bench::summary::out_dir()
                    .join(format!("summary-{}.json", device::label(&dev)))
            });
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
            let s: mistral_rs_bench::summary::Summary = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: not a summary file: {e}", path.display()))?;
            let models = Models::load_default()?;
            let p = models.get(&preset)?;
            let (class, fmt) = format.split_once('/').ok_or_else(|| {
                anyhow::anyhow!("--format must be CLASS/FORMAT, e.g. float/f32 or q4/Q4K")
            })?;
            let b = mistral_rs_bench::budget::build(
                &s,
                p,
                context,
                class,
                fmt,
                e2e_depth,
                e2e_model.as_deref(),
            )?;
            print!("{}", mistral_rs_bench::budget::markdown(&b));
            if let Some(j) = json {
                std::fs::write(&j, serde_json::to_string_pretty(&b)?)?;
            }
        }
        Cmd::Report { summary } => {
            let text = std::fs::read_to_string(&summary)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", summary.display()))?;
            let s: mistral_rs_bench::summary::Summary = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: not a summary file: {e}", summary.display()))?;
            print!("{}", mistral_rs_bench::summary::report(&s));
            // Derived figures are recomputed from the cases (summaries may have been merged).
            let layers = Models::load_default()?
                .presets
                .into_iter()
                .map(|(k, p)| (k, p.layers))
                .collect();
            mistral_rs_bench::summary::print_slopes(&mistral_rs_bench::summary::derive(
                &s.cases, &layers,
            ));
        }
        Cmd::PeersReport {
            summaries,
            out,
            force,
            no_memory,
        } => {
            let mut r = mistral_rs_bench::peers_report::build(&summaries)?;
            if no_memory {
                r.e2e.retain(|row| row.unit != "MiB");
            }
            print!(
                "{}",
                mistral_rs_bench::peers_report::write(&r, &out, force)?
            );
            eprintln!("mistral-rs-bench: report in {}", out.display());
        }
        Cmd::Synth { preset, dtype } => {
            let models = Models::load_default()?;
            let p = models.get(&preset)?;
            let dt = match dtype {
                Some(d) => mistral_rs_bench::config::parse_dtype(&d)
                    .ok_or_else(|| anyhow::anyhow!("dtype `{d}` is not one of f32, f16, bf16"))?,
                None => p.dtype(),
            };
            println!("{}", synth::ensure(p, dt)?.display());
        }
    }
    Ok(())
}
