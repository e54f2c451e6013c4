//! The timed loop: the device is synchronised before the clock starts (so no earlier work is
//! counted) and after the last iteration (so all of this work is); set-up and resets are
//! outside the clock.

use crate::case::Runner;
use crate::device;
use anyhow::Result;
use candle_core::Device;
use std::time::{Duration, Instant};

/// Idle time before each component iteration, µs (`MISTRALRS_BENCH_IDLE_US`; unset or 0:
/// none). With it, each iteration is timed on its own after the process slept that long, so
/// the rayon pool's threads have gone back to sleep, as they have when the engine reaches the
/// operation between other work. End-to-end cases are not affected.
pub const IDLE_ENV: &str = "MISTRALRS_BENCH_IDLE_US";

/// The idle time of [`IDLE_ENV`] (None: unset, 0 or not a number).
pub fn idle_between() -> Option<Duration> {
    std::env::var(IDLE_ENV)
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|&us| us > 0)
        .map(Duration::from_micros)
}

/// Times `iters` iterations of `r`.
pub fn time_iters(r: &mut dyn Runner, device: &Device, iters: u64) -> Result<Duration> {
    // Self-timing runners (end to end) measure their own part of each iteration.
    let mut own = Duration::ZERO;
    let mut self_timed = true;
    for i in 0..iters {
        match r.timed()? {
            Some(d) => own += d,
            None if i == 0 => {
                self_timed = false;
                break;
            }
            None => anyhow::bail!("runner stopped timing itself"),
        }
    }
    if self_timed {
        return Ok(own);
    }
    let idle = idle_between();
    if r.needs_reset() || idle.is_some() {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            if r.needs_reset() {
                r.reset()?;
            }
            device::sync(device)?;
            if let Some(d) = idle {
                std::thread::sleep(d);
            }
            let t = Instant::now();
            r.run()?;
            device::sync(device)?;
            total += t.elapsed();
        }
        Ok(total)
    } else {
        device::sync(device)?;
        let t = Instant::now();
        for _ in 0..iters {
            r.run()?;
        }
        device::sync(device)?;
        Ok(t.elapsed())
    }
}

/// Busy-waits for `d` (a sleep would be too coarse for microsecond cases).
pub fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// What a short untimed-by-Criterion pilot learnt of a component case: one iteration's
/// time and the spread of batches of `iters` iterations.
#[derive(Debug, Clone, Copy)]
pub struct Pilot {
    pub per_iter: Duration,
    pub cv: f64,
}

/// Batches in the pilot.
const PILOT_BATCHES: usize = 5;
/// The shortest pilot batch: long enough to hide the clock and the device synchronisation.
const PILOT_BATCH: Duration = Duration::from_millis(5);

/// Times `PILOT_BATCHES` batches of at least [`PILOT_BATCH`] each (after the case's untimed
/// run), for sizing Criterion's sample count to the case's noise.
pub fn pilot(r: &mut dyn Runner, device: &Device) -> Result<Pilot> {
    let first = time_iters(r, device, 1)?;
    let iters = (PILOT_BATCH.as_secs_f64() / first.as_secs_f64().max(1e-9))
        .ceil()
        .clamp(1.0, 1e6) as u64;
    let per: Vec<f64> = (0..PILOT_BATCHES)
        .map(|_| time_iters(r, device, iters).map(|d| d.as_secs_f64() / iters as f64))
        .collect::<Result<_>>()?;
    let s = crate::util::stats::Summary::of(&per);
    Ok(Pilot {
        per_iter: Duration::from_secs_f64(s.p50),
        cv: s.cv,
    })
}
