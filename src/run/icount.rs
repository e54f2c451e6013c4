//! Instruction counts per component case: a deterministic CPU signal beside time.
//!
//! These VMs expose no hardware counters (`perf stat -e instructions` says "not
//! supported"), so the count comes from valgrind's callgrind, which executes the program on
//! a synthetic CPU and counts every guest instruction: the same binary, inputs and
//! environment give the same count whatever else the machine does.
//!
//! **The counted process** is the bench binary with [`ICOUNT_ENV`] set to a case id: it sets
//! the case up and runs it once untimed (outside the count), then calls
//! [`mrb_icount_iteration`] `iters` times (plus the extra iterations the
//! `MISTRALRS_BENCH_EXTRA_WORK` test knob asks for); callgrind counts only inside that
//! function (`--collect-atstart=no --toggle-collect=mrb_icount_iteration`), so set-up,
//! resets between iterations and the warm-up are never counted. Everything runs on one
//! thread: the case runs inside a one-thread rayon pool (candle's and gemm's parallel loops
//! then run inline on the counting thread) and `RAYON_NUM_THREADS=1` makes candle ask gemm
//! for no parallelism. A second thread's instructions would not be counted (callgrind's
//! toggle is per thread), and a spinning one would make the count depend on scheduling.
//!
//! **What it counts.** Valgrind 3.19 has no AVX-512: the counted binary must be built for a
//! level it executes (`RUSTFLAGS="-C target-cpu=x86-64-v3"`, AVX2 + FMA), and it reports
//! *that* build's instructions, not the native build's that `cargo bench` times (candle
//! picks its quantized kernels at compile time). Runtime dispatch (gemm's) sees valgrind's
//! synthetic CPU, which offers AVX2 at most. A count cannot see memory bandwidth, cache
//! misses, threading or frequency: a change that only moves data (a copy made strided, a
//! lost prefetch) or only changes how work is split over threads leaves it unchanged.
//!
//! **The controller** ([`count`]) starts one valgrind per (side, case), several at once
//! (the counts do not depend on load), with a deadline each.

use super::harness::{extra_work_for, Setup};
use super::pair::Side;
use super::worker::{prepare, REPLY_PREFIX};
use crate::util::build::BuildInfo;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable that makes the bench binary count one case (its id) and exit.
pub const ICOUNT_ENV: &str = "MISTRALRS_BENCH_ICOUNT";
/// Iterations counted (default [`DEFAULT_ITERS`]).
pub const ITERS_ENV: &str = "MISTRALRS_BENCH_ICOUNT_ITERS";
/// 100 iterations: the extra-work knob then adds whole iterations at a 1 % resolution.
pub const DEFAULT_ITERS: u64 = 100;
/// The function whose calls callgrind counts.
pub const COUNTED_FN: &str = "mrb_icount_iteration";

/// The case the bench binary was asked to count, if any.
pub fn requested() -> Option<String> {
    std::env::var(ICOUNT_ENV).ok().filter(|s| !s.is_empty())
}

/// What the counted process did (its one reply line).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Counted {
    pub case: String,
    /// Iterations the count is divided by.
    pub iters: u64,
    /// Iterations added by the extra-work test knob (counted, not divided by).
    pub extra_iters: u64,
    /// The rayon pool's threads the case ran on (1).
    pub threads: usize,
}

/// One iteration of the case: the only code callgrind counts. Never inlined, and not
/// mangled, so that `--toggle-collect` finds it by this name.
#[no_mangle]
#[inline(never)]
pub fn mrb_icount_iteration(r: &mut dyn crate::case::Runner) -> Result<()> {
    r.run()
}

/// The counted process: sets the case up, runs it, prints one [`Counted`] line.
pub fn count_main(case: &str) -> Result<()> {
    let iters = match std::env::var(ITERS_ENV) {
        Ok(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| anyhow!("{ITERS_ENV}=`{v}`: expected a positive integer"))?,
        Err(_) => DEFAULT_ITERS,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "mrb-icount".into())
        .build()?;
    let done = pool.install(|| -> Result<Counted> {
        let setup = Setup::from_env()?;
        if !setup.device.is_cpu() {
            bail!("instruction counts are for the CPU (valgrind): unset MISTRALRS_BENCH_DEVICE");
        }
        // The knob is read before the set-up, so that its allocations come before the
        // case's and leave the heap the case runs on alike with and without it.
        let extra = extra_work_for(case)
            .map(|f| (iters as f64 * f).round() as u64)
            .unwrap_or(0);
        let (mut r, end_to_end) = prepare(&setup, case)?;
        if end_to_end {
            bail!("{case} is end to end: the engine runs its own threads, which a one-thread count cannot follow");
        }
        // One warm-up iteration outside the count (first-call allocations, lazy init).
        if r.needs_reset() {
            r.reset()?;
        }
        r.run()?;
        for _ in 0..iters + extra {
            if r.needs_reset() {
                r.reset()?;
            }
            mrb_icount_iteration(r.as_mut())?;
        }
        Ok(Counted {
            case: case.to_string(),
            iters,
            extra_iters: extra,
            threads: rayon::current_num_threads(),
        })
    })?;
    println!("{REPLY_PREFIX}{}", serde_json::to_string(&done)?);
    Ok(())
}

/// Refuses a build valgrind cannot execute.
pub fn check_build(label: &str, b: &BuildInfo) -> Result<()> {
    if let Some(f) = b.target_features.iter().find(|f| f.starts_with("avx512")) {
        bail!(
            "{label} was built with {f} (rustflags \"{}\"): valgrind 3.19 cannot execute AVX-512. \
             Build the counted binary with RUSTFLAGS=\"-C target-cpu=x86-64-v3\" \
             (e.g. in its own target folder, CARGO_TARGET_DIR=target/icount)",
            b.rustflags
        );
    }
    Ok(())
}

/// `valgrind --version`, or an error saying valgrind is missing.
pub fn valgrind_version() -> Result<String> {
    let o = Command::new("valgrind")
        .arg("--version")
        .output()
        .context("valgrind is not installed (apt-get install valgrind)")?;
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// One side's count of one case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Count {
    pub case: String,
    /// Instructions inside the counted iterations, all of them.
    pub ir: u64,
    pub iters: u64,
    pub extra_iters: u64,
    /// Instructions per (nominal) iteration: `ir / iters`.
    pub ir_per_iter: f64,
    /// Wall time of the valgrind run (set-up included).
    pub wall_s: f64,
    /// callgrind's output (per-function counts: `callgrind_annotate FILE`).
    pub callgrind_file: PathBuf,
}

/// Counts `case` with `side`'s binary under callgrind, writing `out_file` (its log beside
/// it, `.log`). `deadline`: the valgrind process is killed after it.
pub fn count(
    side: &Side,
    case: &str,
    iters: u64,
    out_file: &Path,
    deadline: Duration,
) -> Result<Count> {
    let log = out_file.with_extension("log");
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={COUNTED_FN}"))
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(format!("--log-file={}", log.display()))
        .arg(&side.bin)
        .arg("--bench")
        .env(ICOUNT_ENV, case)
        .env(ITERS_ENV, iters.to_string())
        .env("RAYON_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = &side.dir {
        cmd.current_dir(d).env("MISTRALRS_BENCH_ROOT", d);
    }
    for (k, v) in &side.env {
        cmd.env(k, v);
    }
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start valgrind on {}", side.bin.display()))?;
    // Read both pipes on their own threads, so that a chatty child never blocks on a full pipe.
    let mut so = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut se = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
    let so = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut so, &mut s).map(|_| s)
    });
    let se = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut se, &mut s).map(|_| s)
    });
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if t0.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{}: counting {case} took more than {:.0} s (killed; raise --deadline-s or lower --iters)",
                side.label,
                deadline.as_secs_f64()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = so.join().map_err(|_| anyhow!("stdout reader"))??;
    let stderr = se.join().map_err(|_| anyhow!("stderr reader"))??;
    let wall_s = t0.elapsed().as_secs_f64();
    if !status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "{}: counting {case} failed ({status}); valgrind's log: {}\n{}",
            side.label,
            log.display(),
            tail.join("\n")
        );
    }
    let done: Counted = stdout
        .lines()
        .find_map(|l| l.strip_prefix(REPLY_PREFIX))
        .ok_or_else(|| anyhow!("{}: counting {case} printed no result", side.label))
        .and_then(|j| serde_json::from_str(j).context("bad count reply"))?;
    if done.threads != 1 {
        bail!(
            "{}: {case} ran on {} threads; the count needs one",
            side.label,
            done.threads
        );
    }
    let text = std::fs::read_to_string(out_file)
        .with_context(|| format!("callgrind wrote no {}", out_file.display()))?;
    let ir =
        total_ir(&text).ok_or_else(|| anyhow!("{}: no instruction total", out_file.display()))?;
    if ir == 0 {
        bail!(
            "{}: callgrind counted no instruction in {COUNTED_FN}: a build without the symbol \
             (stripped?) or one from before instruction counts",
            side.label
        );
    }
    Ok(Count {
        case: case.to_string(),
        ir,
        iters: done.iters,
        extra_iters: done.extra_iters,
        ir_per_iter: ir as f64 / done.iters as f64,
        wall_s,
        callgrind_file: out_file.to_path_buf(),
    })
}

/// The instruction total of a callgrind output file (its `summary:` or `totals:` line,
/// first event: `Ir` when no other event is collected).
pub fn total_ir(callgrind_out: &str) -> Option<u64> {
    let mut totals = None;
    for line in callgrind_out.lines() {
        for key in ["summary:", "totals:"] {
            if let Some(rest) = line.strip_prefix(key) {
                let v = rest.split_whitespace().next()?.parse().ok()?;
                if key == "summary:" {
                    return Some(v);
                }
                totals = Some(v);
            }
        }
    }
    totals
}

/// The functions with the largest self counts in a callgrind file, from
/// `callgrind_annotate` (valgrind's own reader of the format): `(instructions, function)`.
pub fn top_functions(callgrind_file: &Path, n: usize) -> Result<Vec<(u64, String)>> {
    let o = Command::new("callgrind_annotate")
        .arg("--inclusive=no")
        .arg(callgrind_file)
        .output()
        .context("callgrind_annotate (valgrind's) did not run")?;
    if !o.status.success() {
        bail!(
            "callgrind_annotate {}: {}",
            callgrind_file.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(parse_annotate(&String::from_utf8_lossy(&o.stdout), n))
}

/// The per-function rows of `callgrind_annotate`'s output: a count with thousands commas,
/// an optional `(x%)`, then `file:function [object]`; the PROGRAM TOTALS line is left out.
pub fn parse_annotate(text: &str, n: usize) -> Vec<(u64, String)> {
    let re = regex::Regex::new(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?)\s*$").expect("regex");
    text.lines()
        .filter_map(|l| {
            let c = re.captures(l)?;
            let name = c[2].to_string();
            if name.contains("PROGRAM TOTALS") || !name.contains(':') {
                return None;
            }
            let v: u64 = c[1].replace(',', "").parse().ok()?;
            Some((v, name))
        })
        .take(n)
        .collect()
}
