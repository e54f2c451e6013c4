#!/usr/bin/env bash
# Compares two revisions of this suite (or of what it pins) on this machine: builds both in
# git worktrees (sharing one target folder, so only changed crates rebuild), then runs the
# two bench binaries as paired workers (`mistral-rs-bench pair`): case by case, sample by
# sample in ABBA order, over four fresh set-ups per case; flagged cases are measured again
# in fresh processes and only confirmed regressions fail (exit 1).
#
#   scripts/bench-pr.sh BASE_REV [HEAD_REV] [-- case filter regex]
#
# Environment: SET (quick, default or full; default quick), OUT (default target/bench-pr;
# an existing one is replaced only with FORCE=1), THRESHOLD (the verdict's minimum effect,
# %), PRECISION (the interval a case samples to, %, default 1), ALLOW_BUILD_MISMATCH=1
# (compare sides built with different rustflags or target features), FEATURES, and the
# usual MISTRALRS_BENCH_* variables.
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
for side in A B; do
  rev=$([[ $side == A ]] && echo "$base" || echo "$head")
  git worktree add --detach "$wt/$side" "$rev" >/dev/null
  (cd "$wt/$side" && cargo bench $features --bench bench_main --no-run 2>&1 | tail -1)
  bin=$(ls -t "$CARGO_TARGET_DIR"/release/deps/bench_main-* | grep -v '\.d$' | head -1)
  cp "$bin" "$out/bin/bench-$side"
  echo "$side = $rev ($(git rev-parse --short "$rev"))"
done
cargo build -q --release $features --bin mistral-rs-bench
echo "built both sides in $(( $(date +%s) - start )) s"
if [[ $mode == pair ]]; then
  rc=0
  target/release/mistral-rs-bench pair --a "$out/bin/bench-A" --a-dir "$wt/A" --b "$out/bin/bench-B" --b-dir "$wt/B" \
    --set "${SET:-quick}" ${1:+--filter "$1"} ${THRESHOLD:+--threshold $THRESHOLD} ${PRECISION:+--precision $PRECISION} \
    ${ALLOW_BUILD_MISMATCH:+--allow-build-mismatch} --out "$out" || rc=$?
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
