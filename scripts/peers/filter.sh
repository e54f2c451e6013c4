#!/usr/bin/env bash
# Prints the Criterion filters of one peers run for PRESET, one per line, each meant for a
# process of its own: first the components (mistral.rs's cases that the peers' components are
# compared with, and candle's), then, for every model the preset brings, mistral.rs end to
# end and candle end to end. One model per process keeps each memory footprint clean (the
# whole card / the process RSS is shared with whatever an earlier model left behind).
#
#   scripts/peers/filter.sh PRESET BENCH_COMMAND...
#   e.g. scripts/peers/filter.sh smollm2-135m cargo bench --bench bench_main --
#        scripts/peers/filter.sh llama-3-8b scripts/run-packed.sh .carry/bin bench
set -euo pipefail
p=${1:?usage: scripts/peers/filter.sh PRESET BENCH_COMMAND...}; shift
q=${p//./\\.}
echo "^attention/$q/(decode/[a-z_]+/ctx2048|prefill/[a-z_]+/ctx512)\$|^ffn/$q/float/[a-z0-9]+/(decode/t1|prefill/t512)\$|^small_ops/$q/(rmsnorm|lm_head)/t1\$|^peers/candle/$q/"
MISTRALRS_BENCH_MODELS=$p "$@" --list '^generation/' 2>/dev/null \
  | sed -n 's#^generation/\([^/]*\)/.*: benchmark$#\1#p' | sort -u \
  | while read -r m; do
      m=${m//./\\.}
      echo "^generation/$m/"
      echo "^peers/candle/$m/"
    done
