#!/usr/bin/env bash
# Instruction counts of this checkout's component cases under callgrind (one thread), with
# the bench binary built for x86-64-v3 (valgrind 3.19 runs no AVX-512) in target/icount.
# Arguments go to `mistral-rs-bench icount` (e.g. --b OTHER_BENCH_BIN, --filter, --set).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(RUSTFLAGS="-C target-cpu=x86-64-v3" CARGO_TARGET_DIR=target/icount \
    cargo bench --bench bench_main --no-run --message-format=json-render-diagnostics |
    scripts/cargo-artifact.py bench_main) || { echo "icount.sh: no bench binary built" >&2; exit 2; }
cargo build --release --bin mistral-rs-bench
exec target/release/mistral-rs-bench icount --a "$bin" "$@"
