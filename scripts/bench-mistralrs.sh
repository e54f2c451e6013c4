#!/usr/bin/env bash
# Runs the suite against a local mistral.rs checkout (a [patch.crates-io] of every
# mistralrs-* crate it holds) and against the crates.io release this suite pins, alternately,
# and prints the verdict: the way a mistral.rs contributor checks a change to the engine.
#
#   scripts/bench-mistralrs.sh PATH/TO/mistral.rs [-- criterion filter]
#
# Environment: ROUNDS (default 3), MISTRALRS_BENCH_PROFILE (default quick), OUT (default
# target/bench-mistralrs), FEATURES.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(cd "${1:?usage: scripts/bench-mistralrs.sh PATH/TO/mistral.rs [-- filter]}" && pwd); shift
[[ ${1:-} == -- ]] && shift
rounds=${ROUNDS:-3}
out=${OUT:-$PWD/target/bench-mistralrs}
export MISTRALRS_BENCH_PROFILE=${MISTRALRS_BENCH_PROFILE:-quick}
features=${FEATURES:+--features $FEATURES}
rm -rf "$out"; mkdir -p "$out/bin"
# A copy of this crate whose Cargo.toml patches every mistralrs-* crate found in the checkout.
patched=$out/patched
mkdir -p "$patched"
cp -r Cargo.toml Cargo.lock build.rs src benches models.toml "$patched/"
[[ -d models ]] && ln -s "$PWD/models" "$patched/models"
{
  echo; echo "[patch.crates-io]"
  for d in "$src"/mistralrs-*/ "$src"; do
    [[ -f $d/Cargo.toml ]] || continue
    name=$(sed -n 's/^name *= *"\(mistralrs[a-z-]*\)".*/\1/p' "$d/Cargo.toml" | head -1)
    [[ -n $name ]] && echo "$name = { path = \"${d%/}\" }"
  done
} >> "$patched/Cargo.toml"
grep -A20 '^\[patch.crates-io\]' "$patched/Cargo.toml"
(cargo bench $features --bench bench_main --no-run 2>&1 | tail -1)
cp "$(ls -t target/release/deps/bench_main-* | grep -v '\.d$' | head -1)" "$out/bin/bench-release"
(cd "$patched" && CARGO_TARGET_DIR="$out/target" cargo bench $features --bench bench_main --no-run 2>&1 | tail -1)
cp "$(ls -t "$out"/target/release/deps/bench_main-* | grep -v '\.d$' | head -1)" "$out/bin/bench-local"
for r in $(seq 1 "$rounds"); do
  for side in release local; do
    echo "== round $r/$rounds: $side"
    MISTRALRS_BENCH_ROOT=$PWD CRITERION_HOME="$out/$side/round-$r" "$out/bin/bench-$side" --bench "$@" > "$out/$side-round-$r.log" 2>&1 \
      || { echo "run failed, see $out/$side-round-$r.log" >&2; exit 2; }
  done
done
cargo run --release $features --bin mistral-rs-bench -- compare "$out/release" "$out/local" --out "$out"
