#!/usr/bin/env bash
# One peers run on this machine: mistral.rs (generation + the matching components), candle
# (the `peers` group) and PyTorch eager (scripts/peers/torch_peers.py) on the same preset,
# the same models and the same shapes, then the report (Markdown, JSON, SVG plots).
#
#   scripts/peers/run.sh [PRESET] [OUTDIR]     # default smollm2-135m, target/peers-<device>
#
# The preset's real model is used too when present (scripts/fetch-models.sh for SmolLM2).
# Environment: MISTRALRS_BENCH_DEVICE (cpu | cuda:0 | metal:0; default cpu), FEATURES
# (e.g. cuda), MISTRALRS_BENCH_PROFILE (default quick), PEERS_PYTHON (a python with torch,
# transformers, gguf and accelerate; default: the venv scripts/peers/venv.sh makes).
# OUTDIR must not exist yet: every run has its own summary, so the report holds one run.
set -euo pipefail
cd "$(dirname "$0")/../.."
preset=${1:-smollm2-135m}
dev=${MISTRALRS_BENCH_DEVICE:-cpu}
label=${dev//:/}
out=$(realpath -m "${2:-target/peers-$label}")
[[ -e $out ]] && { echo "$out exists: pass another OUTDIR or remove it" >&2; exit 2; }
export MISTRALRS_BENCH_PROFILE=${MISTRALRS_BENCH_PROFILE:-quick}
export MISTRALRS_BENCH_MODELS=$preset MISTRALRS_BENCH_DEVICE=$dev
export MISTRALRS_BENCH_OUT=$out CRITERION_HOME=$out/criterion
features=${FEATURES:+--features $FEATURES}
mkdir -p "$out"
py=${PEERS_PYTHON:-$(scripts/peers/venv.sh)}
cargo build --release $features --bin mistral-rs-bench
dir=$(cargo run -q --release $features --bin mistral-rs-bench -- synth "$preset")
echo "== mistral.rs and candle ($preset on $dev, profile $MISTRALRS_BENCH_PROFILE)"
# one process per model (and one for the components): clean memory footprints
scripts/peers/filter.sh "$preset" cargo bench -q $features --bench bench_main -- | while read -r f; do
  echo "-- $f"
  cargo bench -q $features --bench bench_main -- "$f" 2>&1 | tee -a "$out/bench.log" | grep -E '^(mistral-rs-bench: load|FAILED)' || true
done
echo "== PyTorch"
torch_dev=${dev/metal*/mps}
"$py" scripts/peers/torch_peers.py --preset "$preset" --device "$torch_dev" --synth-dir "$dir" \
  --profile "$MISTRALRS_BENCH_PROFILE" --out "$out/peers-torch-$label.json" 2>&1 | tee "$out/torch.log" | grep -v Warning
echo "== report"
cargo run -q --release $features --bin mistral-rs-bench -- peers-report "$out/summary-$label.json" "$out/peers-torch-$label.json" --out "$out/report"
