#!/usr/bin/env bash
# One peers run on this machine: mistral.rs (generation + the matching components), candle
# (the `peers` group), PyTorch eager (scripts/peers/torch_peers.py) and llama.cpp
# (scripts/peers/llamacpp_peers.py, on the preset's GGUF) on the same preset, the same models
# and the same shapes, then the report (Markdown, JSON, SVG plots).
#
#   scripts/peers/run.sh [PRESET] [OUTDIR]     # default smollm2-135m, target/peers-<device>
#
# The preset's real model is used too when present (scripts/fetch-models.sh for SmolLM2).
# Environment: MISTRALRS_BENCH_DEVICE (cpu | cuda:0 | metal:0; default cpu), FEATURES
# (e.g. cuda), MISTRALRS_BENCH_PROFILE (default quick), PEERS_PYTHON (a python with torch,
# transformers, gguf and accelerate; default: the venv scripts/peers/venv.sh makes), LLAMACPP
# (llama.cpp's install folder; default: scripts/peers/llamacpp.sh builds it, about 13 minutes
# cold on 2 cores; 0 leaves llama.cpp out).
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
reports=("$out/summary-$label.json" "$out/peers-torch-$label.json")
if [[ ${LLAMACPP:-} != 0 ]]; then
  echo "== llama.cpp"
  kind=cpu; [[ $dev == cuda* ]] && kind=cuda
  lc=${LLAMACPP:-$(scripts/peers/llamacpp.sh "$kind")}
  # the synthetic model as GGUF in the dtype the engine computes in (f16 on CPU, bf16 on GPU),
  # with SmolLM2's tokenizer (the synthetic one is word-level): presets of another vocabulary
  # size are run on their real GGUF only
  gd=f16; [[ $kind == cuda ]] && gd=bf16
  sg=$out/models/$preset-synthetic-$gd.gguf
  synth=()
  mkdir -p "$out/models"
  if "$py" scripts/peers/synth_gguf.py --synth-dir "$dir" --tokenizer-from models/SmolLM2-135M-Instruct.Q4_1.gguf \
      --dtype "$gd" --out "$sg" >&2; then
    synth=(--synth-gguf "$sg")
  fi
  "$py" scripts/peers/llamacpp_peers.py --llamacpp "$lc" --preset "$preset" --device "${dev%%:*}" "${synth[@]}" \
    --profile "$MISTRALRS_BENCH_PROFILE" --out "$out/peers-llamacpp-$label.json" 2>&1 | tee "$out/llamacpp.log"
  reports+=("$out/peers-llamacpp-$label.json")
  if [[ $kind == cpu ]]; then
    # the engine's counterparts of llama.cpp's matrix products (Llama-3-8B's down projection,
    # one token) on as many threads as test-backend-ops uses: half the hardware threads
    n=$(( $(nproc) / 2 )); (( n > 0 )) || n=1
    MISTRALRS_BENCH_MODELS=llama-3-8b RAYON_NUM_THREADS=$n cargo bench -q $features --bench bench_main -- \
      '^quant_matmul/llama-3-8b/(q4/Q4_0|q4/Q4K|q8/Q8_0|float/f16|float/f32)/down/m1$' 2>&1 | tee -a "$out/bench.log" | grep -E '^FAILED' || true
  fi
fi
echo "== report"
cargo run -q --release $features --bin mistral-rs-bench -- peers-report "${reports[@]}" --out "$out/report"
