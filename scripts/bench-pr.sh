#!/usr/bin/env bash
# Compares two revisions of this suite (or of what it pins) on this machine: builds both in
# git worktrees (sharing one target folder, so only changed crates rebuild), runs them
# alternately A B A B ... so that machine drift lands on both sides, pools each side's
# samples, and prints the verdict (exit 1 on a regression).
#
#   scripts/bench-pr.sh BASE_REV [HEAD_REV] [-- criterion filter]
#
# Environment: ROUNDS (default 3), MISTRALRS_BENCH_PROFILE (default quick), OUT (default
# target/bench-pr; an existing one is replaced only with FORCE=1), THRESHOLD (the verdict's
# minimum effect, %), ALLOW_BUILD_MISMATCH=1 (compare sides built with different rustflags or
# target features), FEATURES, and the usual MISTRALRS_BENCH_* variables.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: scripts/bench-pr.sh BASE_REV [HEAD_REV] [-- filter]}; shift
head=HEAD
if [[ $# -gt 0 && $1 != -- ]]; then head=$1; shift; fi
[[ ${1:-} == -- ]] && shift
rounds=${ROUNDS:-3}
out=$(realpath -m "${OUT:-target/bench-pr}")
export MISTRALRS_BENCH_PROFILE=${MISTRALRS_BENCH_PROFILE:-quick}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
features=${FEATURES:+--features $FEATURES}
if [[ -e $out ]]; then
  [[ ${FORCE:-0} == 1 ]] || { echo "$out exists (results of an earlier run): set FORCE=1 to replace it or OUT=another folder" >&2; exit 2; }
  rm -rf "$out"
fi
mkdir -p "$out/bin"
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
for r in $(seq 1 "$rounds"); do
  for side in A B; do
    echo "== round $r/$rounds: $side"
    (cd "$wt/$side" && MISTRALRS_BENCH_ROOT="$wt/$side" CRITERION_HOME="$out/$side/round-$r" MISTRALRS_BENCH_OUT="$out/$side/out-$r" \
      "$out/bin/bench-$side" --bench "$@" > "$out/$side-round-$r.log" 2>&1) || { echo "run failed, see $out/$side-round-$r.log" >&2; exit 2; }
  done
done
cargo run -q --release $features --bin mistral-rs-bench -- compare "$out/A" "$out/B" ${ALLOW_BUILD_MISMATCH:+--allow-build-mismatch} ${THRESHOLD:+--threshold $THRESHOLD} --out "$out"
