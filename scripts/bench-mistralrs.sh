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
newest_bench() { ls -t "$root"/target/release/deps/bench_main-* | grep -v '\.d$' | head -1; }

# build SIDE NAME: leaves $out/bin/bench-NAME (and with CLI=1 $out/bin/cli-NAME)
build() {
  local side=$1 name=$2 t0=$SECONDS features=${FEATURES:-} dir=$root
  if [[ $side != release ]]; then
    local src rev
    src=$(cd "$side" && pwd)
    dir=$out/$name/patched
    mkdir -p "$dir"
    # .cargo too: outside this folder it is the only config with the rustflags (inside, cargo
    # passes them twice, which BuildInfo counts as one build)
    cp -r Cargo.toml Cargo.lock build.rs src benches models.toml .cargo "$dir/"
    [[ -d models ]] && ln -s "$root/models" "$dir/models"
    python3 scripts/engine-manifest.py "$src" "$dir/Cargo.toml" ${CANDLE:+--candle "$CANDLE"} > "$out/$name/manifest.json"
    local extra
    extra=$(python3 -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["features"]))' "$out/$name/manifest.json")
    features=${features:+$features,}$extra
    rev_var=REV_$name
    rev=${!rev_var:-$(git -C "$src" describe --always --tags 2>/dev/null || basename "$src")}
    export MISTRALRS_BENCH_ENGINE_REV="$rev ($src)"
    echo "== $name: $src at $rev, $(cat "$out/$name/manifest.json")"
  else
    unset MISTRALRS_BENCH_ENGINE_REV
    echo "== $name: mistralrs-core from crates.io"
  fi
  (cd "$dir" && CARGO_TARGET_DIR="$root/target" cargo bench ${features:+--features $features} --bench bench_main --no-run 2>&1 | tail -1)
  cp "$(newest_bench)" "$out/bin/bench-$name"
  if [[ ${CLI:-0} == 1 ]]; then
    # the side's JSON binary too (its release profile compiles mistralrs-core once more)
    (cd "$dir" && CARGO_TARGET_DIR="$root/target" cargo build -q --release ${features:+--features $features} --bin mistral-rs-bench)
    cp "$root/target/release/mistral-rs-bench" "$out/bin/cli-$name"
  fi
  if [[ $side != release ]]; then
    # the build must really use the checkout (a path package has no registry source)
    cargo metadata --format-version 1 --manifest-path "$dir/Cargo.toml" | python3 -c '
import json, sys
m = json.load(sys.stdin)
reg = [p["name"] for p in m["packages"] if p["name"] == "mistralrs-core" and p["source"]]
sys.exit("the patched build still uses mistralrs-core from crates.io" if reg else 0)'
  fi
  echo "$name $side: $((SECONDS - t0)) s" | tee -a "$out/build-times.txt"
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
