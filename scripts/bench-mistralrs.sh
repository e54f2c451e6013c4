#!/usr/bin/env bash
# Two mistral.rs engines, part by part: each side is `release` (the crates.io mistralrs-core
# this suite pins) or a local checkout of mistral.rs at any revision. Both builds run as paired
# workers (`mistral-rs-bench pair`: ABBA per sample, fresh set-ups, confirmation) and the
# verdict is printed per case; then each side's end-to-end cases run once more with in-situ
# attribution and `compare` splits every end-to-end change by pipeline part. The way a
# mistral.rs contributor checks a change to the engine.
#
#   scripts/bench-mistralrs.sh A B [-- case filter regex]
#   scripts/bench-mistralrs.sh PATH [-- filter]          (= release PATH)
#
# A checkout is patched in with scripts/engine-manifest.py: its mistralrs-* crates by path,
# this crate's candle moved to the checkout's candle, the checkout's Cargo.lock, and the API
# adapter feature (`engine-0_9`, src/api/) for 0.9 or newer.
#
# Environment:
#   CANDLE     a candle checkout at the git revision a checkout pins (machines without network)
#   REV_A, REV_B   the revision recorded for a checkout side (default: `git describe` of it,
#              or its folder name when it has no .git)
#   SET (quick, default or full; default quick), THRESHOLD, PRECISION, FEATURES
#   CLI=1      also build each side's JSON binary ($OUT/bin/cli-A, cli-B)
#   INSITU     a regex of the end-to-end cases to attribute in situ, within SET (default
#              '^generation/'; INSITU=0: skip that step)
#   OUT (default target/bench-mistralrs; an existing one is replaced only with FORCE=1)
#   MODE=rounds  whole Criterion runs alternated ROUNDS times (default 3) and `compare`
# Build copies live in $OUT/<side>/patched and share this crate's target folder, so
# dependencies the sides have in common compile once; $OUT/build-times.txt has each side's.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
usage="usage: scripts/bench-mistralrs.sh A B [-- filter]   (A, B: release or PATH/TO/mistral.rs)"
[[ $# -ge 1 ]] || { echo "$usage" >&2; exit 2; }
a=$1; shift
if [[ $# -ge 1 && $1 != -- ]]; then b=$1; shift; else b=$a; a=release; fi
[[ ${1:-} == -- ]] && shift
filter=${1:-}
mode=${MODE:-pair}
[[ $mode == pair || $mode == rounds ]] || { echo "MODE=$mode: use pair or rounds" >&2; exit 2; }
for s in "$a" "$b"; do
  [[ $s == release || -f $s/Cargo.toml ]] || { echo "$s: neither 'release' nor a mistral.rs checkout (no Cargo.toml)" >&2; exit 2; }
done
out=$(realpath -m "${OUT:-target/bench-mistralrs}")
export MISTRALRS_BENCH_PROFILE=${MISTRALRS_BENCH_PROFILE:-quick}
if [[ -e $out ]]; then
  [[ ${FORCE:-0} == 1 ]] || { echo "$out exists (results of an earlier run): set FORCE=1 to replace it or OUT=another folder" >&2; exit 2; }
  rm -rf "$out"
fi
mkdir -p "$out/bin"
# build SIDE NAME: leaves $out/bin/bench-NAME (and with CLI=1 $out/bin/cli-NAME); the patched
# copy, manifest and build log in $out/NAME (scripts/build-engine.sh)
build() {
  local side=$1 name=$2 rev_var=REV_$2
  ENGINE_REV=${!rev_var:-} CARGO_TARGET_DIR="$root/target" scripts/build-engine.sh "$side" "$out/$name" \
    || { echo "side $name ($side) does not build: see $out/$name/build.log" >&2; exit 2; }
  cp "$out/$name/bench" "$out/bin/bench-$name"
  [[ ${CLI:-0} == 1 ]] && cp "$out/$name/cli" "$out/bin/cli-$name"
  echo "$name $side: $(cat "$out/$name/build-time") s" | tee -a "$out/build-times.txt"
}
build "$a" A
build "$b" B
# the driver: this crate's own CLI, built last so target/release holds it again
cargo build -q --release ${FEATURES:+--features $FEATURES} --bin mistral-rs-bench
cli=$root/target/release/mistral-rs-bench

insitu() {
  # each side's end-to-end cases once more, attributed in situ, then split by part
  local re=${INSITU:-^generation/}
  [[ $re == 0 ]] && return 0
  for s in A B; do
    echo "== in situ: $s"
    MISTRALRS_BENCH_SET=${SET:-quick} MISTRALRS_BENCH_ROOT=$root MISTRALRS_BENCH_INSITU=1 CRITERION_HOME="$out/insitu/$s/criterion" MISTRALRS_BENCH_OUT="$out/insitu/$s" \
      "$out/bin/bench-$s" --bench "$re" > "$out/insitu-$s.log" 2>&1 || { echo "in-situ run failed, see $out/insitu-$s.log" >&2; return 2; }
  done
  "$cli" compare "$out/insitu/A" "$out/insitu/B" ${THRESHOLD:+--threshold $THRESHOLD} --out "$out/insitu" | tee "$out/insitu.md" || true
}

if [[ $mode == pair ]]; then
  rc=0
  "$cli" pair --a "$out/bin/bench-A" --a-dir "$root" --b "$out/bin/bench-B" --b-dir "$root" \
    --set "${SET:-quick}" ${filter:+--filter "$filter"} ${THRESHOLD:+--threshold $THRESHOLD} ${PRECISION:+--precision $PRECISION} --out "$out" || rc=$?
  insitu
  exit $rc
fi
rounds=${ROUNDS:-3}
for r in $(seq 1 "$rounds"); do
  for s in A B; do
    echo "== round $r/$rounds: $s"
    MISTRALRS_BENCH_ROOT=$root CRITERION_HOME="$out/$s/round-$r" MISTRALRS_BENCH_OUT="$out/$s/out-$r" "$out/bin/bench-$s" --bench ${filter:+"$filter"} > "$out/$s-round-$r.log" 2>&1 \
      || { echo "run failed, see $out/$s-round-$r.log" >&2; exit 2; }
  done
done
"$cli" compare "$out/A" "$out/B" ${THRESHOLD:+--threshold $THRESHOLD} --out "$out"
