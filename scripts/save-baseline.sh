#!/usr/bin/env bash
# Runs the suite and stores its results as target-baselines/<machine>/ (Criterion estimates
# and samples of every case, the suite's summary, metadata.json). Refuses to replace an
# existing baseline unless --force is given.
#
#   scripts/save-baseline.sh cpu-2core [--force] [-- criterion args, e.g. a filter]
#
# Environment as for cargo bench (MISTRALRS_BENCH_MODELS, _PROFILE, _DEVICE, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
machine=${1:?usage: scripts/save-baseline.sh MACHINE [--force] [-- criterion args]}
shift
force=
if [[ ${1:-} == --force ]]; then force=--force; shift; fi
[[ ${1:-} == -- ]] && shift
if [[ -e target-baselines/$machine && -z $force ]]; then
  echo "target-baselines/$machine exists; pass --force to replace it" >&2
  exit 2
fi
features=${FEATURES:+--features $FEATURES}
# A fresh Criterion folder, so the baseline holds exactly this run.
export CRITERION_HOME=${CRITERION_HOME:-target/criterion-baseline-$machine}
rm -rf "$CRITERION_HOME"
cargo bench $features --bench bench_main -- "$@"
cargo run --release $features --bin mistral-rs-bench -- save-baseline "$machine" $force \
  --command "MISTRALRS_BENCH_PROFILE=${MISTRALRS_BENCH_PROFILE:-default} MISTRALRS_BENCH_MODELS=${MISTRALRS_BENCH_MODELS:-smollm2-135m} cargo bench $features -- $*"
