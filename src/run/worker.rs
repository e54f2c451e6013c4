//! The bench binary as a long-lived worker (`MISTRALRS_BENCH_WORKER=1`), for the paired
//! runner ([`super::pair`]): two workers, one per build, are driven sample by sample so
//! that both builds meet the same machine state (tango-bench's design).
//!
//! The protocol is one JSON object per line. Requests come on stdin ([`Request`]); each
//! reply is one stdout line starting with [`REPLY_PREFIX`] ([`Reply`]), so that whatever
//! else the engine prints to stdout is ignored.

use super::harness::{extra_work_for, slowdown_for, specs_of, Setup};
use super::timing::{spin, time_iters};
use crate::case::{set, Runner, Spec};
use crate::device;
use crate::parts;
use anyhow::{anyhow, bail, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::time::Duration;

/// Environment variable that turns the bench binary into a worker.
pub const WORKER_ENV: &str = "MISTRALRS_BENCH_WORKER";
/// The first characters of every reply line.
pub const REPLY_PREFIX: &str = "@@mrb ";
/// The protocol's version: a worker and a controller of different versions refuse.
pub const PROTOCOL: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Every case id with its smallest set.
    List,
    /// Build a case, run it once untimed, time one more iteration.
    Setup { case: String },
    /// Time `iters` iterations of the case set up last.
    Sample { iters: u64 },
    /// Drop the case set up last.
    Drop,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Listed {
    pub id: String,
    pub set: crate::case::CaseSet,
    pub end_to_end: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Hello {
        protocol: u32,
        build: crate::util::build::BuildInfo,
        /// The device label (`cpu`, `cuda0`, ...).
        device: String,
    },
    Cases {
        cases: Vec<Listed>,
    },
    Ready {
        ns_per_iter: f64,
        end_to_end: bool,
    },
    Sampled {
        ns: f64,
    },
    Dropped,
    Failed {
        error: String,
    },
}

/// Whether this process was started as a worker.
pub fn requested() -> bool {
    std::env::var(WORKER_ENV).is_ok_and(|v| v == "1")
}

struct Active {
    id: String,
    runner: Box<dyn Runner>,
    device: Device,
    slow: Option<f64>,
    extra: Option<f64>,
    /// Fractional extra iterations carried to the next sample.
    carry: f64,
}

impl Active {
    fn sample(&mut self, iters: u64) -> Result<Duration> {
        let mut d = time_iters(self.runner.as_mut(), &self.device, iters)?;
        if let Some(f) = self.extra {
            self.carry += iters as f64 * f;
            let n = self.carry.floor() as u64;
            if n > 0 {
                self.carry -= n as f64;
                d += time_iters(self.runner.as_mut(), &self.device, n)?;
            }
        }
        if let Some(f) = self.slow {
            let e = d.mul_f64(f);
            spin(e);
            d += e;
        }
        Ok(d)
    }
}

/// Every spec of the registry for this process's presets and device.
fn all_specs(setup: &Setup) -> Result<Vec<Spec>> {
    let mut out = Vec::new();
    for part in parts::REGISTRY {
        out.extend(specs_of(setup, part)?.into_iter().map(|(_, _, s)| s));
    }
    Ok(out)
}

/// Builds case `case` of this process's registry, resets it and runs it once untimed (first
/// allocations, kernel loading), then synchronises the device. Also says whether the case is
/// end to end. Skipped cases are errors.
pub fn prepare(setup: &Setup, case: &str) -> Result<(Box<dyn Runner>, bool)> {
    let mut spec = all_specs(setup)?
        .into_iter()
        .find(|s| s.full_id() == case)
        .ok_or_else(|| anyhow!("no case `{case}` in this build"))?;
    if let Some(why) = spec.skip.take() {
        bail!("{case} is skipped here: {why}");
    }
    let build = spec
        .build
        .take()
        .ok_or_else(|| anyhow!("{case}: no builder"))?;
    let mut r = build(&setup.device)?;
    r.reset()?;
    r.run()?;
    device::sync(&setup.device)?;
    Ok((r, spec.is_end_to_end()))
}

/// Serves requests until stdin closes.
///
/// With `MISTRALRS_BENCH_IN_POOL=1` the requests are served on a thread of rayon's global
/// pool ([`on_pool_thread`]) instead of the process's main thread. A diagnostic, not the
/// engine's way: the engine calls candle from its own thread, outside the pool, so every
/// rayon-parallel operation hands its work to the pool and waits for it, as the cases do by
/// default. `pair --b-env MISTRALRS_BENCH_IN_POOL=1` with one binary on both sides measures
/// what that hand-off costs (docs/findings.md, "Decode budget").
pub fn serve() -> Result<()> {
    if std::env::var("MISTRALRS_BENCH_IN_POOL").is_ok_and(|v| v == "1") {
        return on_pool_thread(serve_here);
    }
    serve_here()
}

/// Runs `f` on a thread of rayon's global pool and waits for it: nested rayon work started
/// by `f` is then pushed to that thread's own queue and run there or stolen, not handed
/// over from outside the pool.
pub fn on_pool_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

fn serve_here() -> Result<()> {
    // Die with the controller: it keeps this process stopped (SIGSTOP) between requests, and
    // a stopped process never sees its stdin close, so a killed controller would leave it.
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let setup = Setup::from_env()?;
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let mut active: Option<Active> = None;
    let send = |out: &mut std::io::Stdout, r: &Reply| -> Result<()> {
        writeln!(out, "{REPLY_PREFIX}{}", serde_json::to_string(r)?)?;
        out.flush()?;
        Ok(())
    };
    send(
        &mut out,
        &Reply::Hello {
            protocol: PROTOCOL,
            build: crate::util::build::BuildInfo::current(),
            device: device::label(&setup.device),
        },
    )?;
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Request>(&line) {
            Err(e) => Reply::Failed {
                error: format!("bad request `{line}`: {e}"),
            },
            Ok(req) => handle(&setup, &mut active, req).unwrap_or_else(|e| Reply::Failed {
                error: format!("{e:#}"),
            }),
        };
        send(&mut out, &reply)?;
    }
    Ok(())
}

fn handle(setup: &Setup, active: &mut Option<Active>, req: Request) -> Result<Reply> {
    Ok(match req {
        Request::List => {
            let specs = all_specs(setup)?;
            let ids: Vec<_> = specs.iter().map(|s| s.id.clone()).collect();
            let sets = set::assign(&ids);
            Reply::Cases {
                cases: specs
                    .iter()
                    .zip(sets)
                    .filter(|(s, _)| s.skip.is_none())
                    .map(|(s, set)| Listed {
                        id: s.full_id(),
                        set,
                        end_to_end: s.is_end_to_end(),
                    })
                    .collect(),
            }
        }
        Request::Setup { case } => {
            *active = None;
            let dev = setup.device.clone();
            let (mut r, end_to_end) = prepare(setup, &case)?;
            let d = time_iters(r.as_mut(), &dev, 1)?;
            *active = Some(Active {
                slow: slowdown_for(&case),
                extra: extra_work_for(&case),
                id: case,
                runner: r,
                device: dev,
                carry: 0.0,
            });
            Reply::Ready {
                ns_per_iter: d.as_nanos() as f64,
                end_to_end,
            }
        }
        Request::Sample { iters } => {
            let a = active
                .as_mut()
                .ok_or_else(|| anyhow!("sample before setup"))?;
            let d = a
                .sample(iters.max(1))
                .map_err(|e| anyhow!("{}: {e:#}", a.id))?;
            Reply::Sampled {
                ns: d.as_nanos() as f64,
            }
        }
        Request::Drop => {
            *active = None;
            Reply::Dropped
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn on_pool_thread_runs_its_work_on_a_pool_thread() {
        assert_eq!(
            rayon::current_thread_index(),
            None,
            "the test thread is no pool thread"
        );
        assert!(super::on_pool_thread(rayon::current_thread_index).is_some());
    }
}
