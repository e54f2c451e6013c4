#!/usr/bin/env bash
# One step of the suite on a GPU machine, from a packed CUDA build (scripts/pack-cuda.sh),
# with a time limit per step; logs and results go to $OUT (default /tmp/mrb-out).
#
#   scripts/gpu-suite.sh PACKDIR STEP [STEP...]
#
# Steps:
#   info            nvidia-smi, ceilings (copy bandwidth, bf16 matmul rate)
#   fidelity        suite clock vs CUDA events for a memory-bound, a matmul-bound and a short case
#   comp-small      component groups for smollm2-135m
#   set-comp        the component groups' cases of a case set (MISTRALRS_BENCH_SET, default
#                   `default`) for MODELS (default smollm2-135m,llama-3-8b)
#   set-gen         the generation cases of that set for MODELS, ISQ variants GEN_ISQ (default
#                   q4k), GEN_FILTER narrowing them (default ^generation/)
#   flash           flash attention 2 against the engine without it (FLASH_PACK: a packed
#                   --features flash-attn build of the same commit): the attention group's
#                   prefill cases (naive and flash paths) from the flash build, then the
#                   end-to-end prefill and TTFT cases of MODELS from both builds in ABAB
#                   rounds, each round its own folder (flash/{noflash,flash}-rN), then the
#                   PyTorch peer's SDPA attention and prefill on the same synthetic models;
#                   FLASH_PARTS (default "attention gen torch") and FLASH_ROUNDS (default "1 2")
#                   split it over several calls
#   comp-large      component groups for llama-3-8b (attention, ffn, kv_cache, small_ops)
#   qmm-large       quant_matmul for llama-3-8b
#   llamacpp        llama.cpp beside mistral.rs on this GPU (issue 16): llama.cpp built here for
#                   compute capability 9.0 with every core (scripts/peers/llamacpp.sh cuda, from
#                   the carried sdist tree .carry/llama/llamacpp-src.tar.gz), SmolLM2's shapes
#                   as a Q4_1 GGUF of seeded random weights with SmolLM2's tokenizer
#                   (.carry/llama/tokenizer.gguf; the real GGUF does not fit a carry beside the
#                   binaries) and the synthetic bf16 model as GGUF; mistral.rs's generation
#                   cases on both models, then scripts/peers/llamacpp_peers.py on both
#                   (gguf's wheel from .carry/wheels); results in $CARGO_TARGET_DIR/llamacpp
#   gen-small       generation: smollm2-135m synthetic and GGUF (if models/ has it), JSON binary
#   gen-large       generation: synthetic llama-3-8b, bf16 and ISQ Q4K / Q8_0 (GEN_ISQ: other
#                   ISQ types, empty for bf16 only; GEN_FILTER: the cases, default ^generation/)
#   qmm-new         quant_matmul MXFP4 and FP8 (F8E4M3) for both presets
#   qmm-large-a     quant_matmul for llama-3-8b, unquantized and 4-bit
#   qmm-large-b     quant_matmul for llama-3-8b, 8-bit
#   qmm-rest        quant_matmul cases the first H200 run did not reach (llama-3-8b 8-bit,
#                   AFQ4) and the newer formats (MXFP4, FP8) for both presets
#   conc-probe      concurrency 32 under three KV-cache set-ups (paged for 8 and for 32
#                   full-context sequences, and no paged attention), smollm2-135m synthetic,
#                   each into its own summary folder; memory footprints of mistral.rs and candle
#   insitu-small    in-situ attribution (CUPTI + host sampler; a build with --features cupti)
#                   of smollm2-135m's synthetic generation cases, and the JSON binary at
#                   concurrency 1, 8 and 32 (INSITU_FILTER, INSITU_CONC override them);
#                   traces dumped into $CARGO_TARGET_DIR/traces
#   insitu-large    the same for llama-3-8b through the JSON binary (concurrency 1 and 32)
#   insitu-pin      the in-situ pass against Criterion on a steady host: processes in a row,
#                   alternately free and pinned (taskset -c PIN_CPUS, default 2-5), each
#                   attributing INSITU_FILTER (default SmolLM2's synthetic decode at depth 0)
#                   into $CARGO_TARGET_DIR/pin-{free,pinned}-ROUND; PIN_ROUNDS (default 1 2 3)
#   pair-gpu        the paired PR runner (`mistral-rs-bench pair`) on this card: both sides
#                   copies of the packed bench binary (an A/A: every flag is a false alarm)
#                   unless PAIR_B_ENV (KEY=VALUE) changes B, e.g. injected extra work;
#                   PAIR_FILTER (default the component groups), PAIR_SET (default quick),
#                   PAIR_MODELS (default smollm2-135m), into $CARGO_TARGET_DIR/pair/PAIR_NAME
#                   (default aa); per-round SM clock, throttle reasons and slowdown counters
#                   are in its pair.json
#   pair-sens       the paired verdict's sensitivity on this card, resumably: for trials
#                   1..SENS_TRIALS (default 10), each case of SENS_TARGETS (component case ids)
#                   and each fraction of SENS_FRACTIONS (default "0 0.05"; 0: an A/A of that
#                   case), one `pair` of the case with B given that much extra work of its own
#                   (A the knob at 0), as scripts/verdict-sensitivity.sh's `work` trials; a row
#                   each (scripts/pair-row.py, host = the card's name) in SENS_CSV (default
#                   $OUT/pair-sens.csv; rows already there are skipped), pair.json in
#                   $CARGO_TARGET_DIR/pair/sens-*; `mistral-rs-bench verdict-rates SENS_CSV`;
#                   stops starting trials a minute before STEP_TIMEOUT (run it again to go on)
#   pyenv           the PyTorch peer's Python: carried wheels (.carry/wheels) on top of the
#                   machine's torch/transformers, into $MRB_HOME/py
#   peers-small     mistral.rs generation + candle peers for smollm2-135m (synthetic, GGUF),
#                   then the PyTorch peer on the same models (one run)
#   peers-large     mistral.rs generation (bf16) + candle peers for llama-3-8b
#   torch-large     the PyTorch peer for llama-3-8b
#   stash-gguf      keep .carry/gguf-1/* in $MRB_HOME (the first part of an xz-split GGUF)
#   assemble-gguf   join it with .carry/gguf-2/*, unpack into models/, check the sha256
# Environment: MISTRALRS_BENCH_PROFILE (default quick), STEP_TIMEOUT (default 540 s).
set -uo pipefail
pack=${1:?usage: scripts/gpu-suite.sh PACKDIR STEP [STEP...]}; shift
# no step: print the steps (this file's header)
[[ $# -gt 0 ]] || { sed -n '2,/^set -uo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-/tmp/mrb-out}
mkdir -p "$out"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/mrb/target}
export MISTRALRS_BENCH_PROFILE=${MISTRALRS_BENCH_PROFILE:-quick}
export MISTRALRS_BENCH_DEVICE=${MISTRALRS_BENCH_DEVICE:-cuda:0}
export RUST_LOG=${RUST_LOG:-warn}
limit=${STEP_TIMEOUT:-540}
run() { timeout --kill-after=10 "$limit" "$root/scripts/run-packed.sh" "$pack" "$@"; }
comp='^(attention|ffn|kv_cache|quant_matmul|small_ops)/'
# The PyTorch peer on a preset's synthetic model (and its GGUF when present), same run.
torch_peer() {
  local preset=$1 dir
  dir=$(run bin synth "$preset") || return 1
  # the preset's GGUF (models.toml `source`) is used too when present
  PYTHONPATH=${MRB_HOME:-/tmp/mrb}/py timeout --kill-after=10 "$limit" python3 "$root/scripts/peers/torch_peers.py" \
    --preset "$preset" --device cuda --synth-dir "$dir" --profile "$MISTRALRS_BENCH_PROFILE" \
    --out "$CARGO_TARGET_DIR/mistral-rs-bench/peers-torch-cuda0-$preset.json" --force
}
for step in "$@"; do
  log=$out/$step.log
  echo "== $step ($(date -u +%FT%TZ), profile $MISTRALRS_BENCH_PROFILE)" | tee -a "$out/steps.log"
  t0=$(date +%s)
  case $step in
    info)
      # the host's CPU too: launch-bound cases and device idle time follow it, not the card
      { nvidia-smi; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
        lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Socket|CPU max MHz)'; } > "$out/gpu.txt" 2>&1
      run bin ceilings --fresh > "$log" 2>&1 ;;
    fidelity)
      MISTRALRS_BENCH_MODELS=smollm2-135m,llama-3-8b run bin fidelity \
        small_ops/smollm2-135m/rmsnorm/t1 quant_matmul/llama-3-8b/float/bf16/lm_head/m1 \
        ffn/llama-3-8b/float/bf16/prefill/t512 attention/llama-3-8b/decode/paged/ctx8192 \
        --iters 100 --samples 41 > "$log" 2>&1 ;;
    comp-small)
      MISTRALRS_BENCH_MODELS=smollm2-135m run bench "$comp" > "$log" 2>&1 ;;
    comp-large)
      MISTRALRS_BENCH_MODELS=llama-3-8b run bench '^(attention|ffn|kv_cache|small_ops)/' > "$log" 2>&1 ;;
    qmm-large)
      MISTRALRS_BENCH_MODELS=llama-3-8b run bench '^quant_matmul/' > "$log" 2>&1 ;;
    set-comp)
      MISTRALRS_BENCH_SET=${MISTRALRS_BENCH_SET:-default} MISTRALRS_BENCH_MODELS=${MODELS:-smollm2-135m,llama-3-8b} \
        run bench "$comp" > "$log" 2>&1 ;;
    set-gen)
      MISTRALRS_BENCH_SET=${MISTRALRS_BENCH_SET:-default} MISTRALRS_BENCH_MODELS=${MODELS:-smollm2-135m,llama-3-8b} \
        MISTRALRS_BENCH_ISQ=${GEN_ISQ-q4k} run bench "${GEN_FILTER:-^generation/}" > "$log" 2>&1 ;;
    flash)
      fpack=${FLASH_PACK:?FLASH_PACK: the packed flash-attn build}
      models=${MODELS:-smollm2-135m,llama-3-8b}
      # the flash build unpacks into its own home (run-packed.sh keeps one build per home)
      frun() { MRB_HOME=${MRB_HOME:-/tmp/mrb}-flash timeout --kill-after=10 "$limit" "$root/scripts/run-packed.sh" "$fpack" "$@"; }
      into() { # folder, then the command: its summary and Criterion folders under flash/<folder>
        local d=$CARGO_TARGET_DIR/flash/$1; shift
        MISTRALRS_BENCH_OUT=$d/mistral-rs-bench CRITERION_HOME=$d/criterion "$@"
      }
      parts=" ${FLASH_PARTS:-attention gen torch} "
      # (a subshell that stops at a failing part; a part left out is not a failure)
      ( set -e
        if [[ $parts == *" attention "* ]]; then
          MISTRALRS_BENCH_MODELS=$models into attention frun bench '^attention/[^/]+/prefill/'
        fi
        if [[ $parts == *" gen "* ]]; then
          for r in ${FLASH_ROUNDS:-1 2}; do
            MISTRALRS_BENCH_MODELS=$models into noflash-r$r run bench "${FLASH_GEN:-^generation/[^/]+-synthetic-bf16/(prefill|ttft)/}"
            MISTRALRS_BENCH_MODELS=$models into flash-r$r frun bench "${FLASH_GEN:-^generation/[^/]+-synthetic-bf16/(prefill|ttft)/}"
          done
        fi
        if [[ $parts == *" torch "* ]]; then
          mkdir -p "$CARGO_TARGET_DIR/flash/torch"
          for preset in ${models//,/ }; do
            PYTHONPATH=${MRB_HOME:-/tmp/mrb}/py timeout --kill-after=10 "$limit" python3 "$root/scripts/peers/torch_peers.py" \
              --preset "$preset" --device cuda --synth-dir "$CARGO_TARGET_DIR/mistral-rs-bench/models/$preset-bf16" --no-real \
              --filter prefill --profile "$MISTRALRS_BENCH_PROFILE" \
              --out "$CARGO_TARGET_DIR/flash/torch/peers-torch-cuda0-$preset.json" --force
          done
        fi ) > "$log" 2>&1 ;;
    llamacpp)
      lhome=${MRB_HOME:-/tmp/mrb}/llama
      ld=$CARGO_TARGET_DIR/llamacpp
      mkdir -p "$lhome" "$root/models" "$ld"
      ( set -e
        pip install --quiet --no-deps --no-index --target "$lhome/py" "$root"/.carry/wheels/gguf-*.whl
        [[ -d $lhome/llama_cpp_python-0.3.36 ]] || tar -xzf "$root/.carry/llama/llamacpp-src.tar.gz" -C "$lhome"
        # the preset's GGUF source replaced by the random one: case ids name the file it runs
        sed 's#models/SmolLM2-135M-Instruct.Q4_1.gguf#models/smollm2-135m-random-q4_1.gguf#' "$root/models.toml" > "$ld/models.toml"
        py() { PYTHONPATH=$lhome/py timeout --kill-after=10 "$limit" python3 "$@"; }
        py "$root/scripts/peers/synth_gguf.py" --random-preset smollm2-135m --dtype q4_1 \
          --tokenizer-from "$root/.carry/llama/tokenizer.gguf" --out "$root/models/smollm2-135m-random-q4_1.gguf" --force
        MISTRALRS_BENCH_MODELS_FILE=$ld/models.toml MISTRALRS_BENCH_MODELS=smollm2-135m MISTRALRS_BENCH_OUT=$ld \
          CRITERION_HOME=$ld/criterion run bench "${LLAMA_GEN:-^generation/smollm2-135m-(random-q4_1|synthetic-bf16)/}"
        py "$root/scripts/peers/synth_gguf.py" --synth-dir "$CARGO_TARGET_DIR/mistral-rs-bench/models/smollm2-135m-bf16" \
          --tokenizer-from "$root/.carry/llama/tokenizer.gguf" --dtype bf16 --out "$lhome/smollm2-135m-synthetic-bf16.gguf" --force
        t0l=$(date +%s)
        lc=$(cd "$root" && LLAMACPP_SRC=$lhome/llama_cpp_python-0.3.36 LLAMACPP_JOBS=$(nproc) \
          timeout --kill-after=10 "${LLAMA_BUILD_TIMEOUT:-$limit}" scripts/peers/llamacpp.sh cuda)
        echo "llama.cpp CUDA build: $(( $(date +%s) - t0l )) s on $(nproc) cores"
        cp "$lc/build.json" "$ld/llamacpp-build.json"
        py "$root/scripts/peers/llamacpp_peers.py" --llamacpp "$lc" --preset smollm2-135m --models-toml "$ld/models.toml" \
          --device cuda --gguf "$root/models/smollm2-135m-random-q4_1.gguf" \
          --synth-gguf "$lhome/smollm2-135m-synthetic-bf16.gguf" --profile "$MISTRALRS_BENCH_PROFILE" \
          --out "$ld/peers-llamacpp-cuda0.json" --force ) > "$log" 2>&1 ;;
    gen-small)
      MISTRALRS_BENCH_MODELS=smollm2-135m run bench '^generation/' > "$log" 2>&1
      if [[ -f $root/models/SmolLM2-135M-Instruct.Q4_1.gguf ]]; then
        echo '{"prompt":"The capital of France is","iterations":10,"max_tokens":32,"model":"models/SmolLM2-135M-Instruct.Q4_1.gguf"}' \
          | run bin > "$out/json-smollm2-gguf.json" 2>>"$log"
      fi
      echo '{"prompt":"Hello","iterations":10,"max_tokens":64}' | run bin > "$out/json-smollm2-synthetic.json" 2>>"$log" ;;
    gen-large)
      MISTRALRS_BENCH_MODELS=llama-3-8b MISTRALRS_BENCH_ISQ=${GEN_ISQ-q4k,q8_0} run bench "${GEN_FILTER:-^generation/}" > "$log" 2>&1 ;;
    qmm-new)
      MISTRALRS_BENCH_MODELS=smollm2-135m,llama-3-8b run bench '^quant_matmul/.*/(MXFP4|F8E4M3)/' > "$log" 2>&1 ;;
    qmm-large-a)
      MISTRALRS_BENCH_MODELS=llama-3-8b run bench '^quant_matmul/llama-3-8b/(float|q4)/' > "$log" 2>&1 ;;
    qmm-large-b)
      MISTRALRS_BENCH_MODELS=llama-3-8b run bench '^quant_matmul/llama-3-8b/q8/' > "$log" 2>&1 ;;
    qmm-rest)
      MISTRALRS_BENCH_MODELS=smollm2-135m,llama-3-8b run bench \
        '^quant_matmul/(llama-3-8b/(q8/|q4/(AFQ4|MXFP4)/)|smollm2-135m/.*/(MXFP4|F8E4M3)/)' > "$log" 2>&1 ;;
    conc-probe)
      m=smollm2-135m-synthetic-bf16
      for v in 8 32 off; do
        MISTRALRS_BENCH_MODELS=smollm2-135m MISTRALRS_BENCH_PAGED=$v MISTRALRS_BENCH_OUT=$CARGO_TARGET_DIR/conc-paged-$v \
          CRITERION_HOME=$CARGO_TARGET_DIR/conc-paged-$v/criterion \
          run bench "^(generation/$m/concurrent/c(8|32)|peers/candle/$m/concurrent/c32)\$" >> "$log" 2>&1
      done ;;
    insitu-small)
      mkdir -p "$CARGO_TARGET_DIR/traces"
      MISTRALRS_BENCH_INSITU=1 MISTRALRS_BENCH_INSITU_DUMP=$CARGO_TARGET_DIR/traces MISTRALRS_BENCH_MODELS=smollm2-135m \
        run bench "${INSITU_FILTER:-^generation/smollm2-135m-synthetic-bf16/}" > "$log" 2>&1
      for c in ${INSITU_CONC:-1 8 32}; do
        echo "{\"prompt\":\"Hello\",\"iterations\":3,\"max_tokens\":64,\"concurrency\":$c,\"insitu\":true}" \
          | MISTRALRS_BENCH_INSITU_DUMP=$CARGO_TARGET_DIR/traces/c$c run bin > "$out/json-insitu-smollm2-c$c.json" 2>>"$log"
      done ;;
    insitu-large)
      for c in 1 32; do
        echo "{\"prompt\":\"Hello\",\"iterations\":2,\"max_tokens\":64,\"concurrency\":$c,\"model\":\"llama-3-8b\",\"insitu\":true}" \
          | MISTRALRS_BENCH_INSITU_DUMP=$CARGO_TARGET_DIR/traces/llama-c$c run bin > "$out/json-insitu-llama-c$c.json" 2>>"$log"
      done ;;
    insitu-pin)
      f=${INSITU_FILTER:-^generation/smollm2-135m-synthetic-bf16/decode/tg128/depth0\$}
      for r in ${PIN_ROUNDS:-1 2 3}; do
        for mode in free pinned; do
          pre=(); [[ $mode == pinned ]] && pre=(taskset -c "${PIN_CPUS:-2-5}")
          echo "-- round $r $mode: $f" >> "$log"
          MISTRALRS_BENCH_INSITU=1 MISTRALRS_BENCH_MODELS=smollm2-135m \
            MISTRALRS_BENCH_OUT=$CARGO_TARGET_DIR/pin-$mode-$r CRITERION_HOME=$CARGO_TARGET_DIR/pin-$mode-$r/criterion \
            timeout --kill-after=10 "$limit" "${pre[@]}" "$root/scripts/run-packed.sh" "$pack" bench "$f" >> "$log" 2>&1
        done
      done ;;
    pair-gpu)
      h=${MRB_HOME:-/tmp/mrb}
      run bin --help > /dev/null 2>&1   # unpacks the binaries into $h
      cp "$h/bench_main" "$h/bench_main-B"
      benv=(); [[ -n ${PAIR_B_ENV:-} ]] && benv=(--b-env "$PAIR_B_ENV")
      echo "-- pair ${PAIR_NAME:-aa}: ${PAIR_FILTER:-$comp} ${PAIR_B_ENV:-}" >> "$log"
      MISTRALRS_BENCH_MODELS=${PAIR_MODELS:-smollm2-135m} run bin pair --a "$h/bench_main" --b "$h/bench_main-B" \
        --set "${PAIR_SET:-quick}" --filter "${PAIR_FILTER:-$comp}" "${benv[@]}" \
        --out "$CARGO_TARGET_DIR/pair/${PAIR_NAME:-aa}" >> "$log" 2>&1 ;;
    pair-sens)
      h=${MRB_HOME:-/tmp/mrb}
      run bin --help > /dev/null 2>&1   # unpacks the binaries into $h
      cp "$h/bench_main" "$h/bench_main-B"
      csv=${SENS_CSV:-$out/pair-sens.csv}
      hdr=$("$root/scripts/pair-row.py" --header)
      [[ -s $csv ]] || { mkdir -p "$(dirname "$csv")"; echo "$hdr" > "$csv"; }
      [[ $(head -1 "$csv") == "$hdr" ]] || { echo "$csv has another header: pass another SENS_CSV" | tee -a "$log"; continue; }
      card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '-')
      echo "-- pair-sens into $csv ($(grep -c '^work,' "$csv") rows there)" >> "$log"
      for t in $(seq 1 "${SENS_TRIALS:-10}"); do
        for c in ${SENS_TARGETS:-small_ops/smollm2-135m/lm_head/t1 ffn/smollm2-135m/float/bf16/decode/t1}; do
          for f in ${SENS_FRACTIONS:-0 0.05}; do
            grep -q "^work,$c,$f,$t,full," "$csv" && continue
            # a trial takes 15-40 s: none is started that the step's limit would cut off
            (( $(date +%s) - t0 < limit - 60 )) || break 3
            d=$CARGO_TARGET_DIR/pair/sens-${c//\//_}-f$f-t$t
            echo "-- pair-sens $c f=$f trial $t" >> "$log"
            MISTRALRS_BENCH_MODELS=${PAIR_MODELS:-smollm2-135m} run bin pair --a "$h/bench_main" --b "$h/bench_main-B" \
              --set full --filter "^$c\$" --a-env "MISTRALRS_BENCH_EXTRA_WORK=^$c\$=$(printf %.3f 0)" \
              --b-env "MISTRALRS_BENCH_EXTRA_WORK=^$c\$=$(printf %.3f "$f")" --out "$d" >> "$log" 2>&1
            [[ $? -le 1 && -s $d/pair.json ]] || { echo "pair failed: $c f=$f trial $t" >> "$log"; continue; }
            ROW_HOST=$card "$root/scripts/pair-row.py" "$d/pair.json" work "$c" "$f" "$t" full >> "$csv"
            tail -1 "$csv" >> "$log"
          done
        done
      done
      [[ $csv == "$out"/* ]] || cp "$csv" "$out/" ;;
    pyenv)
      { python3 --version; pip install --quiet --no-deps --no-index --target "${MRB_HOME:-/tmp/mrb}/py" "$root"/.carry/wheels/*.whl;
        PYTHONPATH=${MRB_HOME:-/tmp/mrb}/py python3 -c 'import torch, transformers, gguf, accelerate; print(torch.__version__, transformers.__version__, torch.cuda.get_device_name(0))'; } > "$log" 2>&1 ;;
    peers-small|peers-large)
      preset=$([[ $step == peers-small ]] && echo smollm2-135m || echo llama-3-8b)
      # one process per model (and one for the components): clean memory footprints
      "$root"/scripts/peers/filter.sh $preset "$root/scripts/run-packed.sh" "$pack" bench | while read -r f; do
        MISTRALRS_BENCH_MODELS=$preset run bench "$f" >> "$log" 2>&1
      done
      if [[ $step == peers-small ]]; then torch_peer smollm2-135m >> "$log" 2>&1; fi ;;
    torch-large)
      torch_peer llama-3-8b > "$log" 2>&1 ;;
    stash-gguf)
      mkdir -p "${MRB_HOME:-/tmp/mrb}/gguf" && cp "$root"/.carry/gguf-1/* "${MRB_HOME:-/tmp/mrb}/gguf/" > "$log" 2>&1 ;;
    assemble-gguf)
      mkdir -p "$root/models"
      cat "${MRB_HOME:-/tmp/mrb}"/gguf/part-* "$root"/.carry/gguf-2/part-* | xz -dc > "$root/models/SmolLM2-135M-Instruct.Q4_1.gguf" 2> "$log" \
        && (cd "$root" && sha256sum models/SmolLM2-135M-Instruct.Q4_1.gguf | tee -a "$log" | grep -q b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53) ;;
    *) echo "unknown step $step" | tee -a "$log"; continue ;;
  esac
  rc=$?
  echo "   $step: exit $rc after $(( $(date +%s) - t0 )) s" | tee -a "$out/steps.log"
  tail -n 40 "$log" > "$out/$step.tail"
done
# Results: the suite's JSON and Criterion's estimates/samples (no HTML).
if [[ -d $CARGO_TARGET_DIR ]]; then
  (cd "$CARGO_TARGET_DIR" && find criterion conc-paged-* flash llamacpp -path '*/new/*.json' 2>/dev/null
   find mistral-rs-bench conc-paged-* -maxdepth 1 -name '*.json' 2>/dev/null
   find flash -maxdepth 3 -name '*.json' -not -path '*/criterion/*' 2>/dev/null
   find llamacpp -maxdepth 1 -name '*.json' 2>/dev/null
   find pair -maxdepth 2 -name 'pair.*' 2>/dev/null) \
    | tar -C "$CARGO_TARGET_DIR" -cJf "$out/results.tar.xz" -T - 2>/dev/null
  # In-situ traces, in parts of at most 15 MiB ($OUT takes files of 16 MiB at most).
  if [[ -d $CARGO_TARGET_DIR/traces ]]; then
    tar -C "$CARGO_TARGET_DIR" -cf - traces | xz -6 -T0 | split -b 15M - "$out/traces.tar.xz.part-"
  fi
fi
