#!/usr/bin/env bash
# Prints the Criterion filter of one peers run for PRESET: mistral.rs end to end, the candle
# peers, and the mistral.rs component cases the peers' components are compared with.
#   scripts/peers/filter.sh smollm2-135m
p=${1:?usage: scripts/peers/filter.sh PRESET}
p=${p//./\\.}
echo "^(generation|peers)/|^attention/$p/(decode/[a-z_]+/ctx2048|prefill/[a-z_]+/ctx512)\$|^ffn/$p/float/[a-z0-9]+/(decode/t1|prefill/t512)\$|^small_ops/$p/(rmsnorm|lm_head)/t1\$"
