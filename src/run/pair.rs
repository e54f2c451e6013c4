//! The paired runner: two builds (two bench binaries) as long-lived workers
//! ([`super::worker`]), driven case by case and sample by sample in ABBA order (A B, B A,
//! A B, ...), so that machine drift, another tenant or a frequency change lands on both
//! sides of every pair. The statistic is each pair's ratio B / A.
//!
//! A case's pairs are spread over a few rounds, each with a fresh set-up of both sides, and
//! the interval is clustered by round ([`stats::clustered_ratio_ci`]): on these VMs one
//! set-up's placement moves a memory-bound case by several % for as long as it lives. A
//! case samples until that interval is within the asked precision (at least `min_pairs`
//! pairs) or its time cap runs out, as nvbench samples until its noise criterion or its
//! timeout. Around every case it reads the CPU steal time
//! (`/proc/stat`) and, on a CUDA device, the SM clock, throttle reasons and slowdown
//! counters (`nvidia-smi`) before and after each round; a round during which the device was
//! slowed is measured again (each state and each round's steal time go into `pair.json`).
//!
//! What the pairs mean (the verdict, confirmation) is `crate::analysis::paired`'s.

use super::worker::{Listed, Reply, Request, PROTOCOL, REPLY_PREFIX, WORKER_ENV};
use crate::util::build::BuildInfo;
use crate::util::stats;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// One side of the comparison: a bench binary, the folder it runs in, extra environment.
#[derive(Debug, Clone)]
pub struct Side {
    pub label: String,
    pub bin: PathBuf,
    pub dir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
}

/// How long and how precisely each case samples.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Opts {
    /// Stop when the median ratio's 95 % half-width is at most this (a fraction).
    pub precision: f64,
    pub min_pairs: usize,
    pub max_pairs: usize,
    /// The most time one case may take (both sides, set-up excluded).
    pub case_cap: Duration,
    /// The same for an end-to-end case (one sample is one whole request).
    pub e2e_case_cap: Duration,
    /// A component sample's target length (iterations are added until one sample is this
    /// long); end-to-end cases sample one request.
    pub sample_target: Duration,
    /// Set-ups per component case on the CPU: the pairs are spread over this many fresh
    /// set-ups of both sides, so that one allocation's placement (page colouring,
    /// alignment) does not decide the case. Measured on the 2-core VM with one set-up per
    /// case: A/A FFN decode gave +3.0, −1.8 and +4.3 % in three passes, each interval
    /// excluding zero.
    pub rounds: usize,
    /// The same on a GPU, where a set-up (two processes, two device contexts, the case's
    /// weights) costs about a second against 0.05-0.08 s on the CPU.
    pub gpu_rounds: usize,
    /// The same for an end-to-end case (a set-up loads the model: about 2 s a side here).
    pub e2e_rounds: usize,
}

impl Opts {
    /// Set-ups per component case on `device` (a worker's device label: `cpu`, `cuda0`, ...).
    pub fn component_rounds(&self, device: &str) -> usize {
        if device == "cpu" {
            self.rounds
        } else {
            self.gpu_rounds
        }
        .max(1)
    }

    /// The PR budget: ±1 % at 95 %, 10 to 400 pairs, 8 s per component case in 32 set-ups
    /// on the CPU and 8 on a GPU, 24 s and 3 set-ups per end-to-end case, 20 ms component
    /// samples.
    ///
    /// Why 32 short set-ups on the CPU (2-core VM, 2026-12-08): set-up effects there are
    /// heavy-tailed. Of 32 set-ups of RoPE, 25 agreed within a few % and 7 were 27-40 % off,
    /// either way; one pair's log ratio scatters by about 8 %. With 8 set-ups the interval
    /// was a t-interval over their mean, which a stray set-up or two pulls wide. 32 set-ups
    /// of about 6 pairs each cost 2 s more a case (a set-up is 0.05-0.08 s here), and from
    /// 16 on the rounds' interval is the distribution-free one of their median
    /// ([`stats::ROBUST_CLUSTERS`]), which the strays barely move. Interleaved in one hour,
    /// a 5 % slowdown of RoPE failed 3 of 10 PRs with 8 set-ups and 8 of 10 with 32; FFN f32
    /// decode (less set-up-bound) 8 of 10 both ways. On a GPU a set-up costs
    /// about 1 s, so 32 would add half a minute a case; there 8 stay (an H100 found 5 % in
    /// a launch-bound FFN case in 3 of 10 PRs and in the kernel-bound LM head in 10 of 10,
    /// docs/verdict-sensitivity.md).
    pub const PR: Opts = Opts {
        precision: 0.01,
        min_pairs: 10,
        max_pairs: 400,
        case_cap: Duration::from_secs(8),
        e2e_case_cap: Duration::from_secs(24),
        sample_target: Duration::from_millis(20),
        rounds: 32,
        gpu_rounds: 8,
        e2e_rounds: 3,
    };
}

/// The device's state around one case (CUDA only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GpuState {
    pub sm_mhz: f64,
    pub max_sm_mhz: f64,
    /// nvidia-smi's active clock-event reasons (a bit mask), at the reading.
    pub reasons: u64,
    /// Time the device has spent slowed since the driver loaded, µs: the sum of nvidia-smi's
    /// clock-event reason counters for SW power cap, SW thermal, HW thermal and HW power
    /// brake (`clocks_event_reasons_counters.*`). A round's slowdown that was over by its
    /// end shows here and not in `reasons`. None where the driver has no counters.
    #[serde(default)]
    pub slowed_us: Option<u64>,
}

impl GpuState {
    /// Power, thermal or hardware slowdown: NVML's clock-event reasons SW power cap (0x4),
    /// HW slowdown (0x8), SW thermal (0x20), HW thermal (0x40) and HW power brake (0x80);
    /// not idle (0x1), application clocks (0x2), sync boost (0x10) or display clock (0x100).
    pub fn throttled(&self) -> bool {
        self.reasons & (0x4 | 0x8 | 0x20 | 0x40 | 0x80) != 0
    }

    /// Whether the device was slowed between `before` and this reading: throttled now, or
    /// its slowdown counters moved in between.
    pub fn slowed_since(&self, before: Option<&GpuState>) -> bool {
        let counted = match (before.and_then(|b| b.slowed_us), self.slowed_us) {
            (Some(b), Some(a)) => a > b,
            _ => false,
        };
        self.throttled() || counted
    }
}

/// One case's pairs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairedCase {
    pub case: String,
    pub end_to_end: bool,
    /// Iterations per sample.
    pub iters: u64,
    /// ns per iteration of each sample, pair by pair.
    pub a_ns: Vec<f64>,
    pub b_ns: Vec<f64>,
    /// Pairs per round, in order (each round has its own set-up of both sides).
    #[serde(default)]
    pub rounds: Vec<usize>,
    /// Why sampling stopped: `precision`, `time cap` or `max pairs`.
    pub stop: String,
    /// Wall time of the sampling, s.
    pub wall_s: f64,
    /// CPU steal time over the sampling, % of all CPU time (`/proc/stat`; None elsewhere).
    pub steal_pct: Option<f64>,
    /// The same for each round's sampling, in order (empty where `/proc/stat` is missing).
    #[serde(default)]
    pub round_steal_pct: Vec<f64>,
    pub gpu_before: Option<GpuState>,
    pub gpu_after: Option<GpuState>,
    /// The device's state at the end of each kept round (CUDA only).
    #[serde(default)]
    pub round_gpu: Vec<GpuState>,
    /// Rounds measured again because the device was slowed during them or at their end.
    #[serde(default)]
    pub redone: u32,
}

impl PairedCase {
    /// Each pair's ratio B / A.
    pub fn ratios(&self) -> Vec<f64> {
        ratios(&self.a_ns, &self.b_ns)
    }

    /// The 95 % interval of the median ratio, clustered by round
    /// ([`stats::clustered_ratio_ci`]).
    pub fn ratio_ci(&self) -> (f64, f64) {
        stats::clustered_ratio_ci(&self.ratios(), &self.rounds)
    }

    /// How the rounds' medians scatter, and how much of that the pairs' own noise explains
    /// ([`stats::cluster_scatter`]); None with fewer than 3 rounds.
    pub fn round_scatter(&self) -> Option<stats::ClusterScatter> {
        stats::cluster_scatter(&self.ratios(), &self.rounds)
    }

    /// Each round's median ratio.
    pub fn round_medians(&self) -> Vec<f64> {
        let r = self.ratios();
        let mut out = Vec::new();
        let mut k = 0;
        for &n in &self.rounds {
            if n > 0 && k + n <= r.len() {
                out.push(stats::median(&r[k..k + n]));
            }
            k += n;
        }
        out
    }
}

/// Each pair's ratio B / A.
fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(a, b)| b / a).collect()
}

/// A running worker.
pub struct Worker {
    pub label: String,
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
    pub build: BuildInfo,
    pub device: String,
}

impl Worker {
    pub fn spawn(side: &Side) -> Result<Worker> {
        let mut cmd = Command::new(&side.bin);
        cmd.arg("--bench")
            .env(WORKER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(d) = &side.dir {
            cmd.current_dir(d).env("MISTRALRS_BENCH_ROOT", d);
        }
        for (k, v) in &side.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", side.bin.display()))?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        let out = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?);
        let mut w = Worker {
            label: side.label.clone(),
            child,
            stdin,
            out,
            build: BuildInfo::current(),
            device: String::new(),
        };
        match w.read().with_context(|| {
            format!(
                "{} ({}) did not answer as a worker: a build from before the paired runner? \
                 Use the rounds mode (MODE=rounds)",
                side.label,
                side.bin.display()
            )
        })? {
            Reply::Hello {
                protocol,
                build,
                device,
            } => {
                if protocol != PROTOCOL {
                    bail!(
                        "{} speaks worker protocol {protocol}, this runner {PROTOCOL}",
                        side.label
                    );
                }
                w.build = build;
                w.device = device;
                w.signal(libc::SIGSTOP);
                Ok(w)
            }
            other => bail!("{}: expected a greeting, got {other:?}", side.label),
        }
    }

    fn read(&mut self) -> Result<Reply> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.out.read_line(&mut line)? == 0 {
                bail!("{}: the worker exited", self.label);
            }
            if let Some(json) = line.trim_end().strip_prefix(REPLY_PREFIX) {
                return serde_json::from_str(json)
                    .with_context(|| format!("{}: bad reply `{json}`", self.label));
            }
        }
    }

    /// Sends one request and waits for its reply. The worker runs only meanwhile: it is
    /// continued before the request and stopped after the reply (SIGCONT / SIGSTOP), so that
    /// its idle threads (rayon's spinning workers, the engine's loop) never compete with the
    /// other side's sample. Measured on the 2-core VM before this: an A/A pair of one binary
    /// gave B 7.5-9.9 % faster end-to-end decode and a +22 % FFN outlier.
    pub fn call(&mut self, req: &Request) -> Result<Reply> {
        self.signal(libc::SIGCONT);
        let r = self.call_running(req);
        self.signal(libc::SIGSTOP);
        r
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid; no memory is touched.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    fn call_running(&mut self, req: &Request) -> Result<Reply> {
        writeln!(self.stdin, "{}", serde_json::to_string(req)?)?;
        self.stdin.flush()?;
        match self.read()? {
            Reply::Failed { error } => bail!("{}: {error}", self.label),
            r => Ok(r),
        }
    }

    pub fn list(&mut self) -> Result<Vec<Listed>> {
        match self.call(&Request::List)? {
            Reply::Cases { cases } => Ok(cases),
            r => bail!("{}: expected cases, got {r:?}", self.label),
        }
    }

    fn setup(&mut self, case: &str) -> Result<(f64, bool)> {
        match self.call(&Request::Setup { case: case.into() })? {
            Reply::Ready {
                ns_per_iter,
                end_to_end,
            } => Ok((ns_per_iter, end_to_end)),
            r => bail!("{}: expected ready, got {r:?}", self.label),
        }
    }

    fn sample(&mut self, iters: u64) -> Result<f64> {
        match self.call(&Request::Sample { iters })? {
            Reply::Sampled { ns } => Ok(ns / iters as f64),
            r => bail!("{}: expected a sample, got {r:?}", self.label),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks the kernel to drop a file's clean cached pages (`posix_fadvise` DONTNEED); pages
/// that a running process maps stay. Best effort: a failure leaves the cache as it was.
fn drop_cached(path: &std::path::Path) {
    use std::os::fd::AsRawFd;
    if let Ok(f) = std::fs::File::open(path) {
        // SAFETY: the descriptor is open for the call; fadvise only reads its arguments.
        unsafe {
            libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
    }
}

/// CPU time counters of `/proc/stat` (all, steal), in ticks.
fn cpu_ticks() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice (guests are in user)
    let all: u64 = v.iter().take(8).sum();
    Some((all, *v.get(7)?))
}

/// Whether a round that began in `before` and ended in `after` is measured again: the
/// device was slowed (power, thermal or hardware slowdown) at its end or during it
/// ([`GpuState::slowed_since`]), and fewer than `limit` rounds of this case were redone
/// already, so that a card that stays throttled still ends.
pub fn redo_round(
    before: Option<&GpuState>,
    after: Option<&GpuState>,
    redone: u32,
    limit: usize,
) -> bool {
    after.is_some_and(|a| a.slowed_since(before)) && (redone as usize) < limit
}

/// Steal time since `from` (a [`cpu_ticks`] reading), % of all CPU time.
fn steal_since(from: Option<(u64, u64)>) -> Option<f64> {
    match (from, cpu_ticks()) {
        (Some((a0, s0)), Some((a1, s1))) if a1 > a0 => {
            Some(s1.saturating_sub(s0) as f64 / (a1 - a0) as f64 * 100.0)
        }
        _ => None,
    }
}

/// The clock-event reason counters summed into [`GpuState::slowed_us`].
const SLOWDOWN_COUNTERS: [&str; 4] = [
    "clocks_event_reasons_counters.sw_power_cap",
    "clocks_event_reasons_counters.sw_thermal_slowdown",
    "clocks_event_reasons_counters.hw_thermal_slowdown",
    "clocks_event_reasons_counters.hw_power_brake_slowdown",
];

/// The SM clock, clock-event reasons and slowdown counters of CUDA device `index` (None
/// without nvidia-smi). A driver that does not know the counters' fields (nvidia-smi
/// refuses the whole query) is asked without them; the form it answered is kept for the
/// process, so each reading after the first is one nvidia-smi call.
pub fn gpu_state(index: usize) -> Option<GpuState> {
    static FORM: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let counters = SLOWDOWN_COUNTERS.join(",");
    let forms = [
        ("clocks_event_reasons.active", Some(counters.as_str())),
        ("clocks_event_reasons.active", None),
        ("clocks_throttle_reasons.active", None),
    ];
    let read = |(reasons, extra): (&str, Option<&str>)| -> Option<GpuState> {
        let fields = match extra {
            Some(c) => format!("clocks.sm,clocks.max.sm,{reasons},{c}"),
            None => format!("clocks.sm,clocks.max.sm,{reasons}"),
        };
        let out = Command::new("nvidia-smi")
            .args([
                "-i",
                &index.to_string(),
                &format!("--query-gpu={fields}"),
                "--format=csv,noheader,nounits",
            ])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| parse_gpu_state(&String::from_utf8_lossy(&out.stdout), extra.is_some()))?
    };
    if let Some(&i) = FORM.get() {
        return read(forms[i]);
    }
    let (i, state) = forms
        .iter()
        .enumerate()
        .find_map(|(i, f)| read(*f).map(|s| (i, s)))?;
    let _ = FORM.set(i);
    Some(state)
}

/// One line of `gpu_state`'s query: SM clock, max SM clock, reasons (hex), then with
/// `counters` the four slowdown counters (µs; `[N/A]` or a missing one: no `slowed_us`).
pub fn parse_gpu_state(line: &str, counters: bool) -> Option<GpuState> {
    let f: Vec<&str> = line.trim().split(',').map(str::trim).collect();
    let fields = 3 + if counters { SLOWDOWN_COUNTERS.len() } else { 0 };
    if f.len() != fields {
        return None;
    }
    let slowed_us = if counters {
        f[3..]
            .iter()
            .map(|v| v.trim_end_matches("us").trim().parse::<u64>().ok())
            .sum::<Option<u64>>()
    } else {
        None
    };
    Some(GpuState {
        sm_mhz: f[0].parse().ok()?,
        max_sm_mhz: f[1].parse().ok()?,
        reasons: u64::from_str_radix(f[2].trim_start_matches("0x"), 16).ok()?,
        slowed_us,
    })
}

fn cuda_index(device: &str) -> Option<usize> {
    device.strip_prefix("cuda").map(|n| n.parse().unwrap_or(0))
}

/// The paired runner: the two sides and their current workers.
pub struct Pair {
    sides: (Side, Side),
    workers: Option<(Worker, Worker)>,
    pub opts: Opts,
    /// The device both sides run on.
    pub device: String,
    pub a_build: BuildInfo,
    pub b_build: BuildInfo,
}

impl Pair {
    pub fn start(a: &Side, b: &Side, opts: Opts) -> Result<Pair> {
        let (wa, wb) = (Worker::spawn(a)?, Worker::spawn(b)?);
        if wa.device != wb.device {
            bail!("the two sides run on {} and {}", wa.device, wb.device);
        }
        Ok(Pair {
            sides: (a.clone(), b.clone()),
            device: wa.device.clone(),
            a_build: wa.build.clone(),
            b_build: wb.build.clone(),
            workers: Some((wa, wb)),
            opts,
        })
    }

    fn a(&mut self) -> &mut Worker {
        &mut self.workers.as_mut().expect("workers are running").0
    }

    fn b(&mut self) -> &mut Worker {
        &mut self.workers.as_mut().expect("workers are running").1
    }

    /// Replaces both workers by fresh processes, started in the given order.
    fn respawn(&mut self, b_first: bool) -> Result<()> {
        // The old ones exit first (Drop kills them), so that the new ones do not meet them.
        self.workers = None;
        let (a, b) = (&self.sides.0, &self.sides.1);
        // Each round loads the binaries into fresh page-cache pages: a binary file's cached
        // pages keep their physical placement for as long as they stay cached, and on the
        // 2-core VM that placement moved a case persistently. Two copies of one binary read
        // −3.1 and −2.6 % in embedding t1 (every interval excluding zero), each copy against
        // itself −0.4 to +0.6 % (2026-12-08). Dropped, the placement is drawn again each
        // round, and the rounds average it out instead of carrying it into every pass.
        drop_cached(&a.bin);
        drop_cached(&b.bin);
        let (wa, wb) = if b_first {
            let wb = Worker::spawn(b)?;
            (Worker::spawn(a)?, wb)
        } else {
            let wa = Worker::spawn(a)?;
            (wa, Worker::spawn(b)?)
        };
        if wa.device != self.device || wb.device != self.device {
            bail!("a worker changed device: {} and {}", wa.device, wb.device);
        }
        self.workers = Some((wa, wb));
        Ok(())
    }

    /// The cases both builds know (A's order), with their sets.
    pub fn cases(&mut self) -> Result<Vec<Listed>> {
        let b: std::collections::BTreeSet<String> =
            self.b().list()?.into_iter().map(|c| c.id).collect();
        Ok(self
            .a()
            .list()?
            .into_iter()
            .filter(|c| b.contains(&c.id))
            .collect())
    }

    fn setup_both(&mut self, case: &str, b_first: bool) -> Result<(f64, f64, bool)> {
        let ((na, e2e), (nb, _)) = if b_first {
            let b = self.b().setup(case)?;
            (self.a().setup(case)?, b)
        } else {
            let a = self.a().setup(case)?;
            (a, self.b().setup(case)?)
        };
        Ok((na, nb, e2e))
    }

    /// Measures one case; a round after which the device was throttled is measured again
    /// ([`redo_round`]).
    pub fn measure(&mut self, case: &str, flip: bool) -> Result<PairedCase> {
        let o = self.opts;
        let gpu = cuda_index(&self.device);
        let gpu_before = gpu.and_then(gpu_state);
        let ticks0 = cpu_ticks();
        let t0 = Instant::now();
        let (mut a_ns, mut b_ns, mut rounds) = (Vec::new(), Vec::new(), Vec::new());
        let (mut round_steal, mut round_gpu) = (Vec::new(), Vec::new());
        let (mut iters, mut e2e, mut round, mut redone) = (1, false, 0, 0);
        let stop = loop {
            // Fresh processes and a fresh set-up per round (new weights, new allocations,
            // new thread placement); start and set-up order alternate between rounds and
            // between cases, so neither side is always first.
            let b_first = flip != (round % 2 == 1);
            self.respawn(b_first)?;
            let (na, nb, is_e2e) = self.setup_both(case, b_first)?;
            if round == 0 {
                e2e = is_e2e;
                iters = if e2e {
                    1
                } else {
                    (o.sample_target.as_nanos() as f64 / na.min(nb).max(1.0)).ceil() as u64
                }
                .max(1);
            }
            let (cap, n_rounds) = if e2e {
                (o.e2e_case_cap, o.e2e_rounds.max(1))
            } else {
                (o.case_cap, o.component_rounds(&self.device))
            };
            let share = cap.div_f64(n_rounds as f64);
            let per_round = o.min_pairs.div_ceil(n_rounds);
            // Each round gets its share of the pairs too: a round left with one pair (the
            // others having used them all) has a median as noisy as one pair, which then
            // widens the clustered interval.
            let round_max = o.max_pairs.div_ceil(n_rounds).max(per_round);
            let t_round = Instant::now();
            let round_ticks = cpu_ticks();
            let round_before = gpu.and_then(gpu_state);
            let round_start = a_ns.len();
            let mut n = 0;
            loop {
                // ABBA: even pairs A first, odd pairs B first.
                if (a_ns.len() % 2 == 0) != flip {
                    a_ns.push(self.a().sample(iters)?);
                    b_ns.push(self.b().sample(iters)?);
                } else {
                    b_ns.push(self.b().sample(iters)?);
                    a_ns.push(self.a().sample(iters)?);
                }
                n += 1;
                if n < per_round {
                    continue;
                }
                let last = round + 1 >= n_rounds;
                if last && a_ns.len() >= o.min_pairs && self.precise(&a_ns, &b_ns, &rounds, n) {
                    break;
                }
                if t_round.elapsed() >= share || n >= round_max {
                    break;
                }
            }
            self.a().call(&Request::Drop)?;
            self.b().call(&Request::Drop)?;
            let state = gpu.and_then(gpu_state);
            if redo_round(round_before.as_ref(), state.as_ref(), redone, n_rounds) {
                eprintln!(
                    "mistral-rs-bench pair: {case}: the device was slowed during round {}; \
                     measuring the round again",
                    round + 1
                );
                a_ns.truncate(round_start);
                b_ns.truncate(round_start);
                redone += 1;
                continue;
            }
            round_steal.extend(steal_since(round_ticks));
            round_gpu.extend(state);
            rounds.push(n);
            round += 1;
            if round >= n_rounds {
                break if self.precise(&a_ns, &b_ns, &rounds, 0) {
                    "precision"
                } else if a_ns.len() >= o.max_pairs {
                    "max pairs"
                } else {
                    "time cap"
                };
            }
        };
        let wall_s = t0.elapsed().as_secs_f64();
        let steal_pct = steal_since(ticks0);
        // The last kept round's reading, taken after its workers were done.
        let gpu_after = round_gpu.last().cloned();
        Ok(PairedCase {
            case: case.into(),
            end_to_end: e2e,
            iters,
            a_ns,
            b_ns,
            rounds,
            stop: stop.into(),
            wall_s,
            steal_pct,
            round_steal_pct: round_steal,
            gpu_before,
            gpu_after,
            round_gpu,
            redone,
        })
    }

    /// Whether the clustered interval (rounds done, plus `open` pairs of the round under
    /// way) is within the asked precision.
    fn precise(&self, a: &[f64], b: &[f64], done: &[usize], open: usize) -> bool {
        let r = ratios(a, b);
        let mut sizes = done.to_vec();
        if open > 0 {
            sizes.push(open);
        }
        stats::clustered_precision(&r, &sizes) <= self.opts.precision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    /// Pages of `path` in the page cache (`mincore` over a read-only mapping, which itself
    /// faults nothing in).
    fn resident_pages(path: &std::path::Path) -> usize {
        let f = std::fs::File::open(path).unwrap();
        let len = f.metadata().unwrap().len() as usize;
        // SAFETY: a read-only shared mapping of an open file of `len` bytes, unmapped before
        // return; mincore writes one byte per page into a vector of that many bytes.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            let mut v = vec![0u8; len.div_ceil(page)];
            assert_eq!(libc::mincore(p, len, v.as_mut_ptr()), 0);
            libc::munmap(p, len);
            v.iter().filter(|b| *b & 1 == 1).count()
        }
    }

    #[test]
    fn a_binarys_cached_pages_are_dropped_for_the_next_round() {
        // Beside the test binary, on the file system the builds live on (a tmpfs /tmp would
        // hold its pages as the file itself).
        let dir = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        let path = dir.join(format!("drop-cached-{}.bin", std::process::id()));
        let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        std::fs::File::open(&path).unwrap().sync_all().unwrap();
        let mut back = Vec::new();
        std::fs::File::open(&path)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        let (before, pages) = (resident_pages(&path), data.len() / 4096);
        drop_cached(&path);
        let after = resident_pages(&path);
        std::fs::remove_file(&path).unwrap();
        assert!(
            before >= pages / 2,
            "{before} of {pages} pages cached after reading"
        );
        assert!(
            after <= before / 10,
            "{after} of {before} pages still cached"
        );
    }
}
