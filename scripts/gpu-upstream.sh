#!/usr/bin/env bash
# The GPU leg of scripts/bench-mistralrs.sh: two engines' packed CUDA builds on one GPU
# machine, back to back, step by step (steps of scripts/gpu-suite.sh).
#
#   scripts/gpu-upstream.sh PACK_A PACK_B STEP [STEP...]
#
# PACK_A, PACK_B: scripts/pack-cuda.sh folders of the two sides (PACK_B may hold the bench
# binary alone: BIN=none). Each STEP runs for both sides in ABBA order over ROUNDS (default 1:
# A then B; 2: A B B A), each side-round into its own results folder
# $WORK/<step>/<side>/r<round> (criterion/: Criterion's files, out/: the suite's summary), so
# that `mistral-rs-bench compare $WORK/<step>/A $WORK/<step>/B` compares the two afterwards. The step's
# logs and results end in one archive, $OUT/upstream-<step>.tar.xz (a lent machine returns
# few files).
#
# Environment: OUT (default /tmp/mrb-out), WORK (default /tmp/mrb-up), ROUNDS, TAG (added to
# the archive's name), and what gpu-suite.sh reads (STEP_TIMEOUT, GEN_ISQ, GEN_FILTER, ...).
set -uo pipefail
[[ $# -ge 3 ]] || { echo "usage: scripts/gpu-upstream.sh PACK_A PACK_B STEP [STEP...]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
pa=$(realpath "$1"); pb=$(realpath "$2"); shift 2
out=${OUT:-/tmp/mrb-out}; work=${WORK:-/tmp/mrb-up}
mkdir -p "$out" "$work"
order=(A B)
[[ ${ROUNDS:-1} -ge 2 ]] && order=(A B B A)
for step in "$@"; do
  declare -A round=([A]=0 [B]=0)
  for s in "${order[@]}"; do
    round[$s]=$((round[$s] + 1))
    pack=$pa; [[ $s == B ]] && pack=$pb
    dir=$work/$step/$s/r${round[$s]}
    mkdir -p "$dir"
    echo "== $step: $s round ${round[$s]} ($(date -u +%T))" | tee -a "$out/upstream.log"
    # each side unpacks into its own home; its results and logs into its own folder; the
    # synthetic models (CARGO_TARGET_DIR) are written once for both
    MRB_HOME=/tmp/mrb-$s CARGO_TARGET_DIR=$work/target CRITERION_HOME=$dir/criterion MISTRALRS_BENCH_OUT=$dir/out \
      OUT=$dir/log "$root/scripts/gpu-suite.sh" "$pack" "$step" \
      >> "$out/upstream.log" 2>&1
  done
  unset round
  # the results (no HTML, no traces) and logs of this step, one archive
  (cd "$work" && find "$step" \( -path '*/new/*.json' -o -path '*/out/*.json' -o -path '*/log/*' \) -type f \
     -not -name 'traces.tar.xz.part-*' -not -name 'results.tar.xz') \
    | tar -C "$work" -cJf "$out/upstream-$step${TAG:+-$TAG}.tar.xz" -T -
  ls -la "$out/upstream-$step${TAG:+-$TAG}.tar.xz" | tee -a "$out/upstream.log"
done
