#!/usr/bin/env bash
# Profiles the cases a filter selects and writes a flamegraph SVG per case; with a saved
# baseline that has profiles of the same cases, also a differential flamegraph.
#
#   scripts/flamegraph.sh FILTER [SECONDS] [BASELINE_MACHINE]
#   scripts/flamegraph.sh 'ffn/smollm2-135m/q4' 10 cpu-2core
#
# Writes target/criterion/<group>/<case>/profile/{flamegraph.svg,profile.folded}; with a
# baseline, target/flamegraphs/<case>.diff.svg from
# target-baselines/<machine>/profiles/<case>.folded. To record a baseline's profiles, run
# with SAVE_PROFILES=<machine>.
set -euo pipefail
cd "$(dirname "$0")/.."
filter=${1:?usage: scripts/flamegraph.sh FILTER [SECONDS] [BASELINE_MACHINE]}
secs=${2:-10}
base=${3:-}
features=${FEATURES:+--features $FEATURES}
stamp=$(mktemp); trap 'rm -f "$stamp"' EXIT
cargo bench $features --bench bench_main -- --profile-time "$secs" "$filter"
crit=${CARGO_TARGET_DIR:-target}/criterion
mkdir -p target/flamegraphs
find "$crit" -path '*/profile/profile.folded' -newer "$stamp" | while read -r folded; do
  case_dir=$(basename "$(dirname "$(dirname "$folded")")")
  group=$(basename "$(dirname "$(dirname "$(dirname "$folded")")")")
  name="${group}_${case_dir}"
  echo "flamegraph: ${folded%/*}/flamegraph.svg"
  if [[ -n ${SAVE_PROFILES:-} ]]; then
    mkdir -p "target-baselines/$SAVE_PROFILES/profiles"
    cp "$folded" "target-baselines/$SAVE_PROFILES/profiles/$name.folded"
  fi
  if [[ -n $base && -f target-baselines/$base/profiles/$name.folded ]]; then
    cargo run --release $features --bin mistral-rs-bench -- flamediff \
      "target-baselines/$base/profiles/$name.folded" "$folded" "target/flamegraphs/$name.diff.svg"
  fi
done
