#!/usr/bin/env bash
# Compares two revisions of this suite (or of what it pins) on this machine: builds both in
# git worktrees (sharing one target folder, so only changed crates rebuild), then runs the
# two bench binaries as paired workers (`mistral-rs-bench pair`): case by case, sample by
# sample in ABBA order, over eight fresh set-ups per case; flagged cases are measured again
# in fresh processes and only confirmed regressions fail (exit 1).
#
#   scripts/bench-pr.sh BASE_REV [HEAD_REV] [-- case filter regex]
#
# Environment: SET (quick, default or full; default quick), OUT (default target/bench-pr;
# an existing one is replaced only with FORCE=1), THRESHOLD (the verdict's minimum effect,
# %), PRECISION (the interval a case samples to, %, default 1), ALLOW_BUILD_MISMATCH=1
# (compare sides built with different rustflags or target features), FEATURES, and the
# usual MISTRALRS_BENCH_* variables.
# ICOUNT=1: the instruction-count verdict too (`mistral-rs-bench icount`, callgrind, one
# thread): both sides are built once more for x86-64-v3 (valgrind 3.19 runs no AVX-512) in
# ICOUNT_TARGET (default target/icount) and their component cases of SET and the filter are
# counted; a case whose instructions per iteration grow by more than ICOUNT_THRESHOLD %
# (default 1) fails the PR as a timed regression does. It counts the x86-64-v3 code path, not
# the native one, and cannot see bandwidth, cache misses or threading. The base must be a
# revision with instruction counts (c1f85aa or newer).
# MODE=rounds: the older way, for a base revision from before the paired runner (its bench
# binary is no worker): whole Criterion runs A B A B ..., ROUNDS of them (default 3), each
# side's samples pooled, `mistral-rs-bench compare` (the filter is then Criterion's).
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: scripts/bench-pr.sh BASE_REV [HEAD_REV] [-- filter]}; shift
head=HEAD
if [[ $# -gt 0 && $1 != -- ]]; then head=$1; shift; fi
[[ ${1:-} == -- ]] && shift
mode=${MODE:-pair}
[[ $mode == pair || $mode == rounds ]] || { echo "MODE=$mode: use pair or rounds" >&2; exit 2; }
out=$(realpath -m "${OUT:-target/bench-pr}")
export MISTRALRS_BENCH_PROFILE=${MISTRALRS_BENCH_PROFILE:-quick}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
features=${FEATURES:+--features $FEATURES}
if [[ -e $out ]]; then
  [[ ${FORCE:-0} == 1 ]] || { echo "$out exists (results of an earlier run): set FORCE=1 to replace it or OUT=another folder" >&2; exit 2; }
  rm -rf "$out"
fi
mkdir -p "$out/bin"
start=$(date +%s)
wt=$(mktemp -d)
trap 'git worktree remove --force "$wt/A" 2>/dev/null; git worktree remove --force "$wt/B" 2>/dev/null; rm -rf "$wt"' EXIT
artifact=$PWD/scripts/cargo-artifact.py
icount=${ICOUNT:-0}
icount_target=$(realpath -m "${ICOUNT_TARGET:-target/icount}")
# build SIDE NAME [ENV...]: SIDE's bench binary (cargo names its path) copied to $out/bin/NAME
build() {
  local side=$1 name=$2; shift 2
  if ! bin=$(cd "$wt/$side" && env "$@" cargo bench $features --bench bench_main --no-run \
      --message-format=json-render-diagnostics 2> "$out/build-$name.log" | "$artifact" bench_main); then
    tail -20 "$out/build-$name.log" >&2
    echo "side $side does not build (see $out/build-$name.log)" >&2
    exit 2
  fi
  cp "$bin" "$out/bin/$name"
}
for side in A B; do
  rev=$([[ $side == A ]] && echo "$base" || echo "$head")
  git worktree add --detach "$wt/$side" "$rev" >/dev/null
  build "$side" "bench-$side"
  [[ $icount == 1 ]] && build "$side" "icount-$side" RUSTFLAGS="-C target-cpu=x86-64-v3" CARGO_TARGET_DIR="$icount_target"
  echo "$side = $rev ($(git rev-parse --short "$rev"))"
done
cargo build -q --release $features --bin mistral-rs-bench
echo "built both sides in $(( $(date +%s) - start )) s"
if [[ $mode == pair ]]; then
  rc=0
  target/release/mistral-rs-bench pair --a "$out/bin/bench-A" --a-dir "$wt/A" --b "$out/bin/bench-B" --b-dir "$wt/B" \
    --set "${SET:-quick}" ${1:+--filter "$1"} ${THRESHOLD:+--threshold $THRESHOLD} ${PRECISION:+--precision $PRECISION} \
    ${ALLOW_BUILD_MISMATCH:+--allow-build-mismatch} --out "$out" || rc=$?
  if [[ $icount == 1 ]]; then
    # exit 1: a regression in instructions; 2: the count could not be made
    irc=0
    target/release/mistral-rs-bench icount --a "$out/bin/icount-A" --a-dir "$wt/A" --b "$out/bin/icount-B" --b-dir "$wt/B" \
      --set "${SET:-quick}" ${1:+--filter "$1"} --threshold "${ICOUNT_THRESHOLD:-1}" --out "$out/icount" || irc=$?
    echo "timed verdict: exit $rc; instruction counts: exit $irc"
    rc=$(( irc > rc ? irc : rc ))
  fi
  echo "the comparison took $(( $(date +%s) - start )) s in all, builds included"
  exit $rc
fi
rounds=${ROUNDS:-3}
for r in $(seq 1 "$rounds"); do
  for side in A B; do
    echo "== round $r/$rounds: $side"
    (cd "$wt/$side" && MISTRALRS_BENCH_ROOT="$wt/$side" CRITERION_HOME="$out/$side/round-$r" MISTRALRS_BENCH_OUT="$out/$side/out-$r" \
      "$out/bin/bench-$side" --bench "$@" > "$out/$side-round-$r.log" 2>&1) || { echo "run failed, see $out/$side-round-$r.log" >&2; exit 2; }
  done
done
target/release/mistral-rs-bench compare "$out/A" "$out/B" ${ALLOW_BUILD_MISMATCH:+--allow-build-mismatch} ${THRESHOLD:+--threshold $THRESHOLD} --out "$out"
