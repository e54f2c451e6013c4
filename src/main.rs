//! `mistral-rs-bench`: with no subcommand, the JSON-in/JSON-out generation benchmark
//! (`echo '{"prompt":"Hello","iterations":50}' | mistral-rs-bench`); subcommands for the
//! suite's helpers. The command line only: every subcommand is one call into the library,
//! and this is the one place that ends the process with an exit code.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use mistral_rs_bench::analysis::{
    baseline, budget, cards, compare, fidelity, icount, paired, sensitivity,
};
use mistral_rs_bench::case::{Ctx, WeightFormat};
use mistral_rs_bench::config::{parse_dtype, Models};
use mistral_rs_bench::device::{self, ceilings};
use mistral_rs_bench::engine::synth;
use mistral_rs_bench::report::{flame, peers};
use mistral_rs_bench::results::{derive::derive, tables, writer::preset_layers, Summary};
use mistral_rs_bench::run::jsonbench;
use mistral_rs_bench::run::pair::{Opts, Side};
use mistral_rs_bench::{parts, util::paths};
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
        /// Measure again even if a cached measurement exists, and cache the new one.
        #[arg(long)]
        fresh: bool,
    },
    /// List every case of the selected presets with its cost and typed id, as JSON lines.
    Cases,
    /// List the pipeline parts (Criterion groups) in pipeline order, one per line.
    Parts {
        /// Only the component parts (one kernel or layer per case).
        #[arg(long)]
        components: bool,
    },
    /// The rates of scripts/verdict-sensitivity.sh's trials, with 95 % Clopper–Pearson
    /// intervals, as Markdown.
    VerdictRates {
        #[arg(default_value = "docs/verdict-sensitivity.csv")]
        csv: std::path::PathBuf,
    },
    /// Where the paired verdict's interval widths come from, per case, over stored
    /// pair.json files: the rounds' scatter, the part the pairs' own noise explains, the
    /// set-up part (a set-up-bound case narrows with more rounds, not a longer cap).
    PairRounds {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
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
        #[arg(long, default_value_t = compare::DEFAULT_THRESHOLD_PCT)]
        threshold: f64,
        /// Also write compare.md, github-action-benchmark.json and bencher.json here.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Compare results of builds with different rustflags or target features anyway.
        #[arg(long)]
        allow_build_mismatch: bool,
    },
    /// Two builds' bench binaries as workers, case by case and sample by sample in ABBA
    /// order; flagged cases confirmed in fresh workers. Exit 1 on a confirmed regression.
    Pair {
        /// Build A's bench binary (the base).
        #[arg(long)]
        a: std::path::PathBuf,
        /// Build B's bench binary (the candidate).
        #[arg(long)]
        b: std::path::PathBuf,
        #[command(flatten)]
        sides: SideArgs,
        /// Cases whose id matches this regex (within the set).
        #[arg(long)]
        filter: Option<String>,
        /// The case set: quick, default or full.
        #[arg(long, default_value = "default")]
        set: String,
        /// Minimum effect size in %.
        #[arg(long, default_value_t = compare::DEFAULT_THRESHOLD_PCT)]
        threshold: f64,
        /// Stop a case when the median ratio's 95 % interval is within ± this, %.
        #[arg(long, default_value_t = Opts::PR.precision * 100.0)]
        precision: f64,
        /// The most seconds one case samples.
        #[arg(long, default_value_t = Opts::PR.case_cap.as_secs_f64())]
        case_cap_s: f64,
        /// The most seconds one end-to-end case samples.
        #[arg(long, default_value_t = Opts::PR.e2e_case_cap.as_secs_f64())]
        e2e_case_cap_s: f64,
        /// The fewest pairs per case.
        #[arg(long, default_value_t = Opts::PR.min_pairs)]
        min_pairs: usize,
        /// Fresh set-ups (worker processes) per component case [default: 32 on the CPU, 8 on
        /// a GPU].
        #[arg(long)]
        rounds: Option<usize>,
        /// Fresh set-ups per end-to-end case.
        #[arg(long, default_value_t = Opts::PR.e2e_rounds)]
        e2e_rounds: usize,
        /// Skip the confirmation pass (the verdict is then per first pass).
        #[arg(long)]
        no_confirm: bool,
        #[arg(long)]
        allow_build_mismatch: bool,
        /// Write pair.json and pair.md here.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Instruction counts per component case under callgrind (one thread, deterministic),
    /// of one build or of two builds judged against each other. The binaries must be built
    /// for a level valgrind runs: RUSTFLAGS="-C target-cpu=x86-64-v3". Exit 1 when B
    /// executes more than --threshold % more instructions in a case.
    Icount {
        /// Build A's bench binary (the base).
        #[arg(long)]
        a: std::path::PathBuf,
        /// Build B's bench binary (the candidate); without it A is only counted.
        #[arg(long)]
        b: Option<std::path::PathBuf>,
        #[command(flatten)]
        sides: SideArgs,
        /// Component cases whose id matches this regex (within the set).
        #[arg(long)]
        filter: Option<String>,
        /// The case set: quick, default or full.
        #[arg(long, default_value = "quick")]
        set: String,
        /// The model presets counted (MISTRALRS_BENCH_MODELS of both sides).
        #[arg(long, default_value = "tiny")]
        models: String,
        /// Iterations counted per case.
        #[arg(long, default_value_t = mistral_rs_bench::run::icount::DEFAULT_ITERS)]
        iters: u64,
        /// Flag changes of instructions per iteration above this, %.
        #[arg(long, default_value_t = 1.0)]
        threshold: f64,
        /// valgrind processes at once (default: the CPUs here).
        #[arg(long)]
        jobs: Option<usize>,
        /// Seconds one valgrind process may run.
        #[arg(long, default_value_t = 600.0)]
        deadline_s: f64,
        /// Functions listed per flagged case.
        #[arg(long, default_value_t = 8)]
        top: usize,
        /// callgrind files, icount.json and icount.md (default: target/mistral-rs-bench/icount).
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
        format: WeightFormat,
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
    /// Two cards side by side: each case's time on both, its ratio, and the ratio the cards'
    /// measured ceilings predict for it (bandwidth, FLOP rate or a fixed cost); end-to-end
    /// cases split into device busy and idle from their in-situ breakdowns.
    Cards {
        /// Card A's summary JSON (e.g. the H100's); repeat for several runs of the card (the
        /// first that holds a case gives it).
        #[arg(long = "a", required = true)]
        a: Vec<std::path::PathBuf>,
        /// Card B's summary JSON, the reference the roof shares are read on (e.g. the H200's);
        /// repeatable.
        #[arg(long = "b", required = true)]
        b: Vec<std::path::PathBuf>,
        /// Write the side-by-side as JSON here too.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// The in-situ breakdowns of a summary's end-to-end cases (run with
    /// MISTRALRS_BENCH_INSITU=1): time per unit by part, overhead, coverage, and a stacked-bar SVG.
    Insitu {
        /// Summary JSON (default: target/mistral-rs-bench/summary-<device>.json).
        #[arg(long)]
        summary: Option<std::path::PathBuf>,
        /// Only cases whose id contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Write the stacked-bar chart here (SVG).
        #[arg(long)]
        svg: Option<std::path::PathBuf>,
        /// Print the part table as csv or json instead of Markdown, or every breakdown whole
        /// (full: JSON).
        #[arg(long, default_value = "markdown")]
        format: String,
        /// Split dumped traces (MISTRALRS_BENCH_INSITU_DUMP) again with this build's rules,
        /// each phase on its own, instead of reading a summary.
        #[arg(long, num_args = 1.., conflicts_with = "summary")]
        trace: Vec<std::path::PathBuf>,
        /// With --trace: the unstripped binary of the (stripped) build that recorded the
        /// traces, to resolve their addresses first (scripts/pack-cuda.sh strips).
        #[arg(long, requires = "trace")]
        exe: Option<std::path::PathBuf>,
        /// With --trace (a CUDA trace): instead of the split, the first N device activities
        /// of each phase's first window in launch order, each with its duration and the part
        /// it is placed in (0: all of the window).
        #[arg(long, requires = "trace")]
        kernels: Option<usize>,
    },
    /// Print a Markdown report of a summary file (target/mistral-rs-bench/summary-*.json).
    Report {
        /// The summary JSON.
        summary: std::path::PathBuf,
    },
    /// mistral.rs beside candle, PyTorch and llama.cpp: Markdown, JSON and SVG plots from
    /// summary files of one machine (the suite's summary, scripts/peers/torch_peers.py's and
    /// scripts/peers/llamacpp_peers.py's).
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

/// `--summary`, else this device's summary in the output folder.
fn summary_or_default(summary: Option<std::path::PathBuf>) -> Result<std::path::PathBuf> {
    Ok(match summary {
        Some(p) => p,
        None => mistral_rs_bench::results::writer::summary_file(
            &paths::out_dir(),
            &device::label(&device::from_env()?),
        ),
    })
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        None => json_mode(),
        Some(cmd) => match helper(cmd) {
            Ok(code) => code,
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

fn helper(cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::Ceilings { fresh } => {
            let dev = device::from_env()?;
            let c = if fresh {
                ceilings::measure_and_cache(&dev)?
            } else {
                ceilings::get_or_measure(&dev)?
            };
            println!("{}", serde_json::to_string_pretty(&c)?);
        }
        Cmd::Cases => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let dev = device::from_env()?;
            let models = Models::load_default()?;
            for p in models.selected()? {
                let ctx = Ctx {
                    device: dev.clone(),
                    dtype: device::compute_dtype(&dev, p.dtype())?,
                };
                for part in parts::REGISTRY {
                    for s in (part.specs)(&p, &ctx)? {
                        let line = serde_json::json!({
                            "case": s.full_id(), "id": s.id, "shape": s.shape,
                            "flops": s.cost.flops, "bytes": s.cost.bytes, "tokens": s.tokens,
                            "intensity": s.cost.intensity(), "skip": s.skip,
                        });
                        match writeln!(out, "{line}") {
                            // the reader stopped (`| head`): not an error
                            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
                            r => r?,
                        }
                    }
                }
            }
        }
        Cmd::Parts { components } => {
            for part in parts::REGISTRY {
                if !components || part.kind == parts::Kind::Component {
                    println!("{}", part.group);
                }
            }
        }
        Cmd::Icount {
            a,
            b,
            sides,
            filter,
            set,
            models,
            iters,
            threshold,
            jobs,
            deadline_s,
            top,
            out,
        } => {
            let models = [("MISTRALRS_BENCH_MODELS", models.as_str())];
            let out = out.unwrap_or_else(|| paths::out_dir().join("icount"));
            let req = icount::Request {
                a: sides.a(a, &models)?,
                b: b.map(|b| sides.b(b, &models)).transpose()?,
                set: set
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--set `{set}`: use quick, default or full"))?,
                filter: filter.map(|f| regex::Regex::new(&f)).transpose()?,
                iters,
                threshold_pct: threshold,
                jobs: jobs
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                deadline: std::time::Duration::from_secs_f64(deadline_s),
                out: out.clone(),
                top,
            };
            let report = icount::run(&req)?;
            print!("{}", icount::markdown(&report));
            for p in icount::write_outputs(&report, &out)? {
                eprintln!("written {}", p.display());
            }
            if report.verdict.is_some_and(|v| !v.pass) {
                return Ok(1);
            }
        }
        Cmd::VerdictRates { csv } => {
            let t = sensitivity::load(&csv)?;
            print!("{}", sensitivity::injected(&t).markdown());
            println!();
            print!("{}", sensitivity::aa(&t).markdown());
        }
        Cmd::PairRounds { files } => print!("{}", paired::rounds_table(&files)?.markdown()),
        Cmd::Fidelity {
            cases,
            iters,
            samples,
        } => {
            let dev = device::from_env()?;
            let presets = Models::load_default()?.selected()?;
            let rows = fidelity::run(&presets, &dev, &cases, iters, samples)?;
            print!("{}", fidelity::table(&rows).markdown());
            let out = paths::out_dir().join(format!("fidelity-{}.json", device::label(&dev)));
            std::fs::create_dir_all(paths::out_dir())?;
            mistral_rs_bench::util::json::write(&out, &rows)?;
            eprintln!("written {}", out.display());
        }
        Cmd::Pair {
            a,
            b,
            sides,
            filter,
            set,
            threshold,
            precision,
            case_cap_s,
            e2e_case_cap_s,
            min_pairs,
            rounds,
            e2e_rounds,
            no_confirm,
            allow_build_mismatch,
            out,
        } => {
            let req = paired::Request {
                a: sides.a(a, &[])?,
                b: sides.b(b, &[])?,
                opts: Opts {
                    precision: precision / 100.0,
                    case_cap: std::time::Duration::from_secs_f64(case_cap_s),
                    e2e_case_cap: std::time::Duration::from_secs_f64(e2e_case_cap_s),
                    min_pairs,
                    rounds: rounds.unwrap_or(Opts::PR.rounds),
                    gpu_rounds: rounds.unwrap_or(Opts::PR.gpu_rounds),
                    e2e_rounds,
                    ..Opts::PR
                },
                threshold_pct: threshold,
                filter: filter.map(|f| regex::Regex::new(&f)).transpose()?,
                set: set
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--set `{set}`: use quick, default or full"))?,
                confirm: !no_confirm,
                allow_build_mismatch,
            };
            let report = paired::run(&req)?;
            print!("{}", paired::markdown(&report));
            if let Some(dir) = out {
                for p in paired::write_outputs(&report, &dir)? {
                    eprintln!("written {}", p.display());
                }
            }
            if !report.verdict.pass {
                return Ok(1);
            }
        }
        Cmd::Compare {
            baseline: base,
            candidate,
            threshold,
            out,
            allow_build_mismatch,
        } => {
            let base = baseline::resolve(&base);
            let cand = match candidate {
                Some(c) => baseline::resolve(&c),
                None => paths::criterion_dir(),
            };
            let builds = compare::check_builds(&base, &cand, allow_build_mismatch)?;
            eprintln!("{builds}");
            let (rows, unmatched) = compare::compare(&base, &cand, threshold)?;
            print!("{}", compare::markdown(&rows, threshold));
            let split = compare::split_by_part(
                &rows,
                &compare::insitu_cases_of_side(&base),
                &compare::insitu_cases_of_side(&cand),
            );
            if !split.is_empty() {
                print!(
                    "\n#### The changed end-to-end cases, split by part (in situ)\n\n{}",
                    compare::split_table(&split).markdown()
                );
            }
            for u in &unmatched {
                eprintln!("not compared: {u}");
            }
            if let Some(dir) = out {
                for p in compare::write_outputs(&rows, threshold, &builds, &dir)? {
                    eprintln!("written {}", p.display());
                }
            }
            if rows
                .iter()
                .any(|r| r.verdict == compare::Verdict::Regression)
            {
                return Ok(1);
            }
        }
        Cmd::SaveBaseline {
            machine,
            force,
            command,
        } => {
            let dest = baseline::save(&machine, force, command.as_deref())?;
            println!("{}", dest.display());
        }
        Cmd::MergeBaseline {
            baseline: base,
            criterion,
            summary,
            machine,
            replace,
        } => {
            let dir = baseline::resolve(&base);
            let m = baseline::merge(&dir, &criterion, &summary, &machine, replace)?;
            println!(
                "{}: {} added, {} replaced, {} kept",
                dir.display(),
                m.added,
                m.replaced,
                m.kept
            );
        }
        Cmd::Flamediff { before, after, out } => {
            flame::diff(
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
            let path = summary_or_default(summary)?;
            let s = Summary::load(&path)?;
            let models = Models::load_default()?;
            let p = models.get(&preset)?;
            let b = budget::build(&s, p, context, &format, e2e_depth, e2e_model.as_deref())?;
            print!("{}", budget::markdown(&b));
            if let Some(j) = json {
                mistral_rs_bench::util::json::write(&j, &b)?;
            }
        }
        Cmd::Cards { a, b, json } => {
            let load = |v: &[std::path::PathBuf]| -> Result<Vec<Summary>> {
                v.iter().map(|p| Summary::load(p)).collect()
            };
            let c = cards::build(&load(&a)?, &load(&b)?)?;
            print!("{}", cards::markdown(&c));
            if let Some(j) = json {
                mistral_rs_bench::util::json::write(&j, &c)?;
            }
        }
        Cmd::Insitu {
            summary,
            filter,
            svg,
            format,
            trace,
            exe,
            kernels,
        } => {
            if !trace.is_empty() {
                if svg.is_some() {
                    anyhow::bail!("--svg draws a summary's cases; it does not take --trace");
                }
                if let Some(n) = kernels {
                    insitu_timeline(&trace, filter.as_deref(), n)?;
                    return Ok(0);
                }
                insitu_traces(&trace, exe.as_deref(), filter.as_deref(), &format)?;
                return Ok(0);
            }
            let path = summary_or_default(summary)?;
            let s = Summary::load(&path)?;
            let cases: Vec<_> = s
                .cases
                .into_iter()
                .filter(|c| c.insitu.is_some())
                .filter(|c| filter.as_deref().is_none_or(|f| c.case.contains(f)))
                .collect();
            if cases.is_empty() {
                anyhow::bail!(
                    "{} has no in-situ breakdown{} (run the generation cases with MISTRALRS_BENCH_INSITU=1)",
                    path.display(),
                    filter.map(|f| format!(" matching `{f}`")).unwrap_or_default()
                );
            }
            print_splits(&tables::splits(&cases), &format)?;
            if let Some(out) = svg {
                mistral_rs_bench::report::insitu::plot(&cases, &out)?;
                eprintln!("mistral-rs-bench: wrote {}", out.display());
            }
        }
        Cmd::Report { summary } => {
            let s = Summary::load(&summary)?;
            print!("{}", tables::report(&s));
            // Derived figures are recomputed from the cases (summaries may have been merged).
            let slopes = tables::slopes_table(&derive(&s.cases, &preset_layers()));
            if !slopes.is_empty() {
                print!("\n{}", slopes.markdown());
            }
        }
        Cmd::PeersReport {
            summaries,
            out,
            force,
            no_memory,
        } => {
            let mut r = peers::build(&summaries)?;
            if no_memory {
                r.e2e.retain(|row| row.unit != "MiB");
            }
            print!("{}", peers::write(&r, &out, force)?);
            eprintln!("mistral-rs-bench: report in {}", out.display());
        }
        Cmd::Synth { preset, dtype } => {
            let models = Models::load_default()?;
            let p = models.get(&preset)?;
            let dt = match dtype {
                Some(d) => parse_dtype(&d)
                    .ok_or_else(|| anyhow::anyhow!("dtype `{d}` is not one of f32, f16, bf16"))?,
                None => p.dtype(),
            };
            println!("{}", synth::ensure(p, dt)?.display());
        }
    }
    Ok(0)
}

/// Prints named in-situ breakdowns as Markdown, or their part table as CSV or JSON.
fn print_splits(rows: &[tables::Split], format: &str) -> anyhow::Result<()> {
    match format {
        "markdown" | "md" => print!("{}", tables::markdown_of(rows)),
        "csv" => print!("{}", tables::parts_table(rows).csv()?),
        "json" => println!(
            "{}",
            serde_json::to_string_pretty(&tables::parts_table(rows).json())?
        ),
        "full" => {
            let v: Vec<_> = rows
                .iter()
                .map(|(case, b)| serde_json::json!({ "case": case, "insitu": b }))
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        f => anyhow::bail!("--format must be markdown, csv, json or full, not `{f}`"),
    }
    Ok(())
}

/// `insitu --trace F --kernels N`: each phase's first window, launch by launch.
fn insitu_timeline(
    paths: &[std::path::PathBuf],
    filter: Option<&str>,
    n: usize,
) -> anyhow::Result<()> {
    use mistral_rs_bench::device::insitu;
    let rules = mistral_rs_bench::engine::attribution_rules()?;
    for path in paths {
        let t = insitu::Trace::load(path)?;
        let Some(gpu) = &t.gpu else {
            anyhow::bail!("{}: no device timeline (a CPU trace)", path.display());
        };
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("trace");
        let mut seen: Vec<&str> = vec![];
        for w in &t.windows {
            let name = format!("{stem}/{}", w.phase);
            if seen.contains(&w.phase.as_str()) || filter.is_some_and(|f| !name.contains(f)) {
                continue;
            }
            seen.push(&w.phase);
            let rows = insitu::gpu::timeline(gpu, &rules, w);
            let total: f64 = rows.iter().map(|r| r.us).sum();
            println!(
                "### {name}: first window, {} activities, {:.1} µs of device time\n",
                rows.len(),
                total
            );
            println!("| # | activity | µs | part |\n|---:|---|---:|---|");
            let take = if n == 0 { rows.len() } else { n };
            for (i, r) in rows.iter().take(take).enumerate() {
                let short: String = r.name.chars().take(72).collect();
                println!("| {i} | `{short}` | {:.1} | {} |", r.us, r.part);
            }
            println!();
        }
    }
    Ok(())
}

/// `insitu --trace`: each dumped trace's phases split again with this build's rules.
fn insitu_traces(
    paths: &[std::path::PathBuf],
    exe: Option<&std::path::Path>,
    filter: Option<&str>,
    format: &str,
) -> anyhow::Result<()> {
    use mistral_rs_bench::device::insitu;
    let rules = mistral_rs_bench::engine::attribution_rules()?;
    let mut named = vec![];
    for path in paths {
        let mut t = insitu::Trace::load(path)?;
        if let Some(exe) = exe {
            let n = insitu::symbols::resymbolize(&mut t, exe)
                .with_context(|| format!("resolving {}", path.display()))?;
            eprintln!(
                "mistral-rs-bench: {}: {n} addresses resolved",
                path.display()
            );
        }
        let mut phases: Vec<&str> = t.windows.iter().map(|w| w.phase.as_str()).collect();
        phases.sort_unstable();
        phases.dedup();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("trace");
        for phase in phases {
            let name = format!("{stem}/{phase}");
            if filter.is_some_and(|f| !name.contains(f)) {
                continue;
            }
            let units = insitu::window_units(&t, Some(phase));
            if units == 0 {
                anyhow::bail!(
                    "{}: the `{phase}` windows record no units (a trace dumped before they \
                     were recorded cannot be split per token)",
                    path.display()
                );
            }
            let b = insitu::attribute(&t, Some(phase), &rules, &t.unit, units)?;
            named.push((name, b));
        }
    }
    if named.is_empty() {
        anyhow::bail!("no trace phase matches");
    }
    let rows: Vec<tables::Split> = named.iter().map(|(n, b)| (n.as_str(), b)).collect();
    print_splits(&rows, format)
}

/// The two sides' folders and environments (`pair`, `icount`).
#[derive(clap::Args)]
struct SideArgs {
    /// The folder A runs in (its models.toml); default: here.
    #[arg(long)]
    a_dir: Option<std::path::PathBuf>,
    #[arg(long)]
    b_dir: Option<std::path::PathBuf>,
    /// KEY=VALUE added to A's environment (repeatable).
    #[arg(long)]
    a_env: Vec<String>,
    /// KEY=VALUE added to B's environment (repeatable), e.g. injected extra work.
    #[arg(long)]
    b_env: Vec<String>,
}

impl SideArgs {
    fn a(&self, bin: std::path::PathBuf, defaults: &[(&str, &str)]) -> Result<Side> {
        side("A", bin, &self.a_dir, &self.a_env, defaults)
    }
    fn b(&self, bin: std::path::PathBuf, defaults: &[(&str, &str)]) -> Result<Side> {
        side("B", bin, &self.b_dir, &self.b_env, defaults)
    }
}

/// One side: its `KEY=VALUE` arguments, then each default its arguments do not set.
fn side(
    label: &str,
    bin: std::path::PathBuf,
    dir: &Option<std::path::PathBuf>,
    kv: &[String],
    defaults: &[(&str, &str)],
) -> Result<Side> {
    let mut env: Vec<(String, String)> = kv
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("`{kv}`: expected KEY=VALUE"))
        })
        .collect::<Result<_>>()?;
    for (k, v) in defaults {
        if !env.iter().any(|(e, _)| e == k) {
            env.push((k.to_string(), v.to_string()));
        }
    }
    Ok(Side {
        label: label.into(),
        bin,
        dir: dir.clone(),
        env,
    })
}
