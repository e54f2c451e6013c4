//! A Criterion profiler backed by pprof: `cargo bench -- --profile-time 10 <filter>` writes
//! `flamegraph.svg` (and `profile.folded`, the collapsed stacks, for diffing) into
//! `target/criterion/<group>/<case>/profile/`.
//!
//! pprof's own `criterion` feature pins criterion 0.5; this small adapter implements
//! criterion 0.8's `Profiler` trait over `pprof::ProfilerGuard` instead.

use criterion::profiler::Profiler;
use pprof::ProfilerGuard;
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Samples the benchmark's threads at `frequency` Hz while Criterion profiles a case.
pub struct PprofProfiler {
    frequency: i32,
    active: Option<ProfilerGuard<'static>>,
}

impl PprofProfiler {
    pub fn new(frequency: i32) -> Self {
        Self {
            frequency,
            active: None,
        }
    }
}

impl Profiler for PprofProfiler {
    fn start_profiling(&mut self, _benchmark_id: &str, _benchmark_dir: &Path) {
        match pprof::ProfilerGuardBuilder::default()
            .frequency(self.frequency)
            .blocklist(&["libc", "libgcc", "pthread", "vdso"])
            .build()
        {
            Ok(guard) => self.active = Some(guard),
            Err(e) => eprintln!("mistral-rs-bench: cannot start pprof: {e}"),
        }
    }

    fn stop_profiling(&mut self, benchmark_id: &str, benchmark_dir: &Path) {
        let Some(guard) = self.active.take() else {
            return;
        };
        let report = match guard.report().build() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("mistral-rs-bench: pprof report for {benchmark_id} failed: {e}");
                return;
            }
        };
        if let Err(e) = std::fs::create_dir_all(benchmark_dir) {
            eprintln!(
                "mistral-rs-bench: cannot create {}: {e}",
                benchmark_dir.display()
            );
            return;
        }
        let svg = benchmark_dir.join("flamegraph.svg");
        match File::create(&svg) {
            Ok(f) => match report.flamegraph(f) {
                Ok(()) => eprintln!("mistral-rs-bench: flamegraph written to {}", svg.display()),
                Err(e) => eprintln!("mistral-rs-bench: flamegraph for {benchmark_id} failed: {e}"),
            },
            Err(e) => eprintln!("mistral-rs-bench: cannot create {}: {e}", svg.display()),
        }
        // Collapsed stacks ("frame;frame;frame count"), the input of differential flamegraphs.
        let folded = benchmark_dir.join("profile.folded");
        if let Ok(mut f) = File::create(&folded) {
            for (frames, count) in report.data.iter() {
                let mut stack = vec![frames.thread_name_or_id()];
                for frame in frames.frames.iter().rev() {
                    stack.extend(frame.iter().rev().map(|sym| sym.to_string()));
                }
                let _ = writeln!(f, "{} {}", stack.join(";"), count);
            }
        }
    }
}
