#!/usr/bin/env bash
# Finds the mistral.rs commit that moved a case: `git bisect run` over a mistral.rs repository,
# each step building the suite against that revision and pairing it with the good revision's
# build (`mistral-rs-bench pair`, ABBA samples, fresh set-ups) on the cases that moved.
#
#   scripts/bisect-mistralrs.sh REPO GOOD BAD CASE_REGEX
#
# REPO: a mistral.rs git repository (a clone, or a bare snapshot: the work tree of each step is
# extracted with `git archive`, so the bisect never touches a checkout of yours). GOOD, BAD:
# revisions (BAD is the newer, where CASE_REGEX is slower). A step is "bad" when the paired
# median of the cases moved by more than THRESHOLD % (default 10) in the direction BAD moved
# (DIRECTION=slower, the default, or faster, to find an improvement); a revision that does not
# build is skipped (`git bisect skip`, exit 125).
#
# Environment: SRC (where the extracted trees are kept, default target/bisect-src), CANDLE_GIT (a candle git repository: each step extracts the candle revision
# that step pins, for machines without network), OUT (default target/bisect-mistralrs; kept
# with FORCE=1 replacing it), THRESHOLD, DIRECTION, PRECISION, MAX_STEPS (stop after this many
# steps, default unlimited: `git bisect log` in $OUT/bisect.log says how far it got),
# BUILD_TARGET (the target folder of the steps' builds, default target/: shares the suite's
# dependencies; another keeps this checkout's own builds from waiting on cargo's lock).
# Every step's build time, verdict and pair report are in $OUT/steps/<rev>/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
[[ $# -eq 4 ]] || { echo "usage: scripts/bisect-mistralrs.sh REPO GOOD BAD CASE_REGEX" >&2; exit 2; }
repo=$(cd "$1" && pwd); good=$2; bad=$3; cases=$4
out=$(realpath -m "${OUT:-target/bisect-mistralrs}")
if [[ ${STEP:-0} == 1 ]]; then :; elif [[ -e $out ]]; then
  [[ ${FORCE:-0} == 1 ]] || { echo "$out exists: set FORCE=1 to replace it or OUT=another folder" >&2; exit 2; }
  rm -rf "$out"
fi
# the extracted trees (mistral.rs-<rev>, candle-<rev>): kept between runs, so a revision's
# build is reused by the next bisect over it
srcs=$(realpath -m "${SRC:-target/bisect-src}")
mkdir -p "$out/steps" "$srcs"
export MISTRALRS_BENCH_PROFILE=${MISTRALRS_BENCH_PROFILE:-quick}

# tree REV DEST: REV's files, without the paths a snapshot may lack (res/: images)
tree() {
  if [[ ! -f $2/Cargo.toml ]]; then
    mkdir -p "$2"
    # shellcheck disable=SC2046
    # (git still reports the absent images it walks past: those lines only are dropped)
    git -C "$repo" archive "$1" $(git -C "$repo" ls-tree --name-only "$1" | grep -vx res) \
      2> >(grep -v "^error: invalid object .* for 'res/" >&2) | tar -x -C "$2"
  fi
  # mistralrs-core's build script asks `git rev-parse HEAD` for its revision and reruns when
  # .git/HEAD changes: in an extracted tree that file is missing (so the crate was rebuilt on
  # every build, ~6 minutes) and git answered with the repository around it (this suite's
  # commit). A minimal git folder holding the revision fixes both.
  local g=$2/mistralrs-core/.git
  if [[ -d $2/mistralrs-core && ! -f $g/HEAD ]]; then
    mkdir -p "$g/objects" "$g/refs"
    git -C "$repo" rev-parse "$1^{commit}" > "$g/HEAD"
  fi
}

# candle_for CHECKOUT: the candle tree for a checkout pinning candle by git revision (empty: none)
candle_for() {
  local rev
  rev=$(python3 -c 'import sys,tomllib; d=tomllib.load(open(sys.argv[1],"rb"))["workspace"]["dependencies"]["candle-core"]; print(d.get("rev","") if isinstance(d,dict) else "")' "$1/Cargo.toml")
  [[ -n $rev && -n ${CANDLE_GIT:-} ]] || return 0
  local dir=$srcs/candle-${rev:0:10}
  if [[ ! -f $dir/Cargo.toml ]]; then
    mkdir -p "$dir"
    git -C "$CANDLE_GIT" archive "$rev" | tar -x -C "$dir"
  fi
  echo "$dir"
}

# build REV: the bench binary of the suite against REV, in $out/steps/REV/bench (exit 125: it
# does not build with any API form of src/api/; scripts/build-engine.sh)
build() {
  local rev=$1 step=$out/steps/$1 src=$srcs/mistral.rs-$1 rc=0
  mkdir -p "$step"
  [[ -x $step/bench ]] && return 0
  tree "$rev" "$src"
  CANDLE=$(candle_for "$src") ENGINE_REV=$rev OTHER_API=1 CARGO_TARGET_DIR="${BUILD_TARGET:-$root/target}" \
    scripts/build-engine.sh "$src" "$step" || rc=$?
  if [[ $rc == 0 ]]; then
    echo "$rev: built in $(cat "$step/build-time") s with features [$(cat "$step/features")]" | tee -a "$out/build-times.txt"
    return 0
  fi
  echo "$rev: does not build (see $step/build.log)" | tee -a "$out/build-times.txt"
  return 125
}

# judge REV: pairs REV's build with the good one's on the cases; exit 1 when they moved by
# more than THRESHOLD % in DIRECTION (bad), 0 when not (good), 125 when it cannot tell
judge() {
  local rev=$1 step=$out/steps/$1 change
  build "$rev" || return $?
  target/release/mistral-rs-bench pair --a "$out/steps/good/bench" --a-dir "$root" --b "$step/bench" --b-dir "$root" \
    --set full --filter "$cases" --threshold 0 --no-confirm ${PRECISION:+--precision $PRECISION} --out "$step/pair" > "$step/pair.log" 2>&1 || true
  [[ -f $step/pair/pair.json ]] || { echo "$rev: the pair run failed (see $step/pair.log)" >&2; return 125; }
  change=$(python3 -c 'import json,statistics,sys; r=json.load(open(sys.argv[1]))["rows"]; print(round(statistics.median(x["change_pct"] for x in r), 2))' "$step/pair/pair.json")
  local rc=0
  python3 - "$change" "${THRESHOLD:-10}" "${DIRECTION:-slower}" <<'PY' || rc=$?
import sys
c, t, d = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
sys.exit(1 if (c > t if d == "slower" else c < -t) else 0)
PY
  echo "$rev: median change of the cases against the good revision: $change % -> $([[ $rc == 1 ]] && echo bad || echo good)" | tee -a "$out/verdicts.txt"
  return $rc
}

if [[ ${STEP:-0} == 1 ]]; then
  # one bisect step, called by `git bisect run`, the revision to test in BISECT_HEAD
  rev=$(git -C "$repo" rev-parse --short=10 BISECT_HEAD)
  n=$(grep -c . "$out/verdicts.txt" 2>/dev/null || echo 0)
  [[ -n ${MAX_STEPS:-} && $n -gt ${MAX_STEPS} ]] && { echo "MAX_STEPS reached" >&2; exit 128; }
  judge "$rev" || exit $?
  exit 0
fi

# the good side once: every step is paired with it
good_rev=$(git -C "$repo" rev-parse --short=10 "$good")
build "$good_rev" || { echo "the good revision $good does not build" >&2; exit 2; }
ln -sfn "$good_rev" "$out/steps/good"
cargo build -q --release --bin mistral-rs-bench
# the bad end first: a bisect is only as good as the change it looks for
bad_rev=$(git -C "$repo" rev-parse --short=10 "$bad")
if judge "$bad_rev"; then
  echo "$bad did not move by more than ${THRESHOLD:-10} % against $good on '$cases': nothing to bisect" >&2
  exit 1
fi
git -C "$repo" bisect reset >/dev/null 2>&1 || true
started=$(git -C "$repo" bisect start --no-checkout "$bad" "$good")
echo "$started"
# a range of one commit is decided at the start: `bisect run` would test a stale BISECT_HEAD
if ! grep -q 'is the first bad commit' <<<"$started"; then
  STEP=1 OUT=$out git -C "$repo" bisect run "$root/scripts/bisect-mistralrs.sh" "$repo" "$good" "$bad" "$cases" || true
fi
git -C "$repo" bisect log | tee "$out/bisect.log"
git -C "$repo" bisect reset >/dev/null 2>&1 || true
