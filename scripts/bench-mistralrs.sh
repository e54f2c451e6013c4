#!/usr/bin/env bash
# Runs the suite against a local mistral.rs checkout (a [patch.crates-io] of every
# mistralrs-* crate it holds) and against the crates.io release this suite pins, as paired
# workers (`mistral-rs-bench pair`: ABBA per sample, fresh set-ups, confirmation), and prints
# the verdict: the way a mistral.rs contributor checks a change to the engine.
#
#   scripts/bench-mistralrs.sh PATH/TO/mistral.rs [-- case filter regex]
#
# Environment: SET (quick, default or full; default quick), OUT (default
# target/bench-mistralrs; an existing one is replaced only with FORCE=1), THRESHOLD,
# PRECISION, FEATURES. MODE=rounds: whole Criterion runs alternated ROUNDS times (default 3)
# and `compare` (the filter is then Criterion's).
# Both builds share this crate's target folder, so only the mistralrs-* crates
# (and what depends on them) compile twice.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(cd "${1:?usage: scripts/bench-mistralrs.sh PATH/TO/mistral.rs [-- filter]}" && pwd); shift
[[ ${1:-} == -- ]] && shift
mode=${MODE:-pair}
[[ $mode == pair || $mode == rounds ]] || { echo "MODE=$mode: use pair or rounds" >&2; exit 2; }
out=$(realpath -m "${OUT:-target/bench-mistralrs}")
export MISTRALRS_BENCH_PROFILE=${MISTRALRS_BENCH_PROFILE:-quick}
features=${FEATURES:+--features $FEATURES}
if [[ -e $out ]]; then
  [[ ${FORCE:-0} == 1 ]] || { echo "$out exists (results of an earlier run): set FORCE=1 to replace it or OUT=another folder" >&2; exit 2; }
  rm -rf "$out"
fi
mkdir -p "$out/bin"
# A copy of this crate whose Cargo.toml patches every mistralrs-* crate of the checkout's
# workspace (found with `cargo metadata`), with this crate's pins moved to their versions.
root=$PWD
patched=$out/patched
mkdir -p "$patched"
cp -r Cargo.toml Cargo.lock build.rs src benches models.toml "$patched/"
[[ -d models ]] && ln -s "$root/models" "$patched/models"
cargo metadata --no-deps --format-version 1 --manifest-path "$src/Cargo.toml" > "$out/checkout.json"
python3 - "$out/checkout.json" "$patched/Cargo.toml" <<'PY'
import json, re, sys, os
pkgs = [p for p in json.load(open(sys.argv[1]))["packages"] if p["name"].startswith("mistralrs")]
toml = open(sys.argv[2]).read()
lines = ["", "[patch.crates-io]"]
for p in pkgs:
    d = os.path.dirname(p["manifest_path"])
    lines.append(f'{p["name"]} = {{ path = "{d}" }}')
    # this crate pins =0.8.1: pin the checkout's version instead, or cargo ignores the patch
    toml = re.sub(rf'^({re.escape(p["name"])} = (?:\{{ version = )?)"=[^"]+"', rf'\g<1>"={p["version"]}"', toml, flags=re.M)
open(sys.argv[2], "w").write(toml + "\n".join(lines) + "\n")
print("patched:", ", ".join(f'{p["name"]} {p["version"]}' for p in pkgs))
PY
grep -E '^mistralrs' "$patched/Cargo.toml"
(cargo bench $features --bench bench_main --no-run 2>&1 | tail -1)
cp "$(ls -t target/release/deps/bench_main-* | grep -v '\.d$' | head -1)" "$out/bin/bench-release"
(cd "$patched" && CARGO_TARGET_DIR="$root/target" cargo bench $features --bench bench_main --no-run 2>&1 | tail -1)
# the local build must really use the checkout (a path package has no registry source)
cargo metadata --format-version 1 --manifest-path "$patched/Cargo.toml" | python3 -c '
import json, sys
m = json.load(sys.stdin)
reg = [p["name"] for p in m["packages"] if p["name"] == "mistralrs-core" and p["source"]]
sys.exit("the patched build still uses mistralrs-core from crates.io" if reg else 0)'
cp "$(ls -t target/release/deps/bench_main-* | grep -v '\.d$' | head -1)" "$out/bin/bench-local"
cargo build -q --release $features --bin mistral-rs-bench
if [[ $mode == pair ]]; then
  exec target/release/mistral-rs-bench pair --a "$out/bin/bench-release" --a-dir "$root" --b "$out/bin/bench-local" --b-dir "$root" \
    --set "${SET:-quick}" ${1:+--filter "$1"} ${THRESHOLD:+--threshold $THRESHOLD} ${PRECISION:+--precision $PRECISION} --out "$out"
fi
rounds=${ROUNDS:-3}
for r in $(seq 1 "$rounds"); do
  for side in release local; do
    echo "== round $r/$rounds: $side"
    MISTRALRS_BENCH_ROOT=$root CRITERION_HOME="$out/$side/round-$r" MISTRALRS_BENCH_OUT="$out/$side/out-$r" "$out/bin/bench-$side" --bench "$@" > "$out/$side-round-$r.log" 2>&1 \
      || { echo "run failed, see $out/$side-round-$r.log" >&2; exit 2; }
  done
done
target/release/mistral-rs-bench compare "$out/release" "$out/local" ${THRESHOLD:+--threshold $THRESHOLD} --out "$out"
