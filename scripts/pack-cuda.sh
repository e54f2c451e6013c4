#!/usr/bin/env bash
# Packs a CUDA build for a run on another machine (e.g. a lent GPU box without a Rust
# toolchain): strips the bench binary and the JSON binary and compresses them with xz.
#
#   source ../shared/cuda/env.sh
#   RUSTFLAGS="-C target-cpu=x86-64-v3" CARGO_TARGET_DIR=target/cuda \
#     cargo build --release --features cuda,cupti --bins --benches   # cupti: in situ
#   CARGO_TARGET_DIR=target/cuda scripts/pack-cuda.sh [DEST]   # default DEST: .carry/bin
#
# The portable level (x86-64-v3) replaces .cargo/config.toml's target-cpu=native, which
# would assume this machine's CPU on the GPU host; a build with native flags is refused.
# Its own target folder keeps the CPU build's artifacts (other flags) from being rebuilt.
#
# BENCH=PATH and BIN=PATH pack other binaries (e.g. a side of scripts/build-engine.sh);
# BIN=none packs the bench binary alone (two engines' benches fit one carry, four binaries do not).
#
# On the GPU machine, from a checkout of this repository:
#   scripts/run-packed.sh DEST <args...>  # unpacks once into /tmp/mrb and runs a step
set -euo pipefail
cd "$(dirname "$0")/.."
tgt=${CARGO_TARGET_DIR:-target}
dest=${1:-.carry/bin}
bench=${BENCH:-$(ls -t "$tgt"/release/deps/bench_main-* 2>/dev/null | grep -v '\.d$' | head -1 || true)}
bin=${BIN:-$tgt/release/mistral-rs-bench}
[[ -n $bench && -x $bench ]] || { echo "no bench binary under $tgt/release/deps (cargo build --release --features cuda --benches)" >&2; exit 1; }
[[ $bin == none || -x $bin ]] || { echo "no $bin (cargo build --release --features cuda --bins)" >&2; exit 1; }
pairs=("$bench:bench_main")
[[ $bin == none ]] || pairs+=("$bin:mistral-rs-bench")
for pair in "${pairs[@]}"; do
  b=${pair%%:*}
  # grep reads to the end (no -q): under pipefail, strings must not die of SIGPIPE
  if strings -a "$b" | grep -- '-C target-cpu=native' > /dev/null; then
    echo "$b was built with -C target-cpu=native (this machine's CPU): rebuild with" >&2
    echo "  RUSTFLAGS=\"-C target-cpu=x86-64-v3\" for another host" >&2
    exit 1
  fi
done
mkdir -p "$dest"
for pair in "${pairs[@]}"; do
  src=${pair%%:*}; name=${pair##*:}
  strip -o "$dest/$name" "$src"
  # -9e: about 10 % smaller than -6 (the flash build 35.5 -> 30.9 MB), which decides what fits one carry
  xz -9e -T0 -f "$dest/$name"
  echo "$dest/$name.xz: $(du -h "$dest/$name.xz" | cut -f1) (from $src)"
done
(cd "$dest" && sha256sum *.xz > SHA256SUMS)
git rev-parse --short=12 HEAD > "$dest/COMMIT" 2>/dev/null || true
