//! `mistral-rs-bench`: helper commands of the suite (the JSON-in/JSON-out generation bench
//! is added by the end-to-end work).

use anyhow::Result;
use clap::{Parser, Subcommand};
use mistral_rs_bench::{case::Ctx, ceilings, config::Models, device, parts};

#[derive(Parser)]
#[command(
    name = "mistral-rs-bench",
    version,
    about = "Benchmarks of the mistral.rs LLM pipeline"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
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
}

fn main() {
    if let Err(e) = run() {
        eprintln!("mistral-rs-bench: {e:#}");
        std::process::exit(2);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let dev = device::from_env()?;
    match cli.cmd {
        Cmd::Ceilings { fresh } => {
            let c = if fresh {
                ceilings::measure(&dev)?
            } else {
                ceilings::get_or_measure(&dev)?
            };
            println!("{}", serde_json::to_string_pretty(&c)?);
        }
        Cmd::Cases => {
            let models = Models::load_default()?;
            for p in models.selected()? {
                let ctx = Ctx {
                    device: dev.clone(),
                    dtype: device::compute_dtype(&dev, p.dtype())?,
                };
                for (_, gen) in parts::ALL {
                    for s in gen(&p, &ctx) {
                        let line = serde_json::json!({
                            "case": s.full_id(), "shape": s.shape, "flops": s.cost.flops,
                            "bytes": s.cost.bytes, "intensity": s.cost.intensity(), "skip": s.skip,
                        });
                        println!("{line}");
                    }
                }
            }
        }
    }
    Ok(())
}
