#!/usr/bin/env bash
# Measures how small a slowdown the `compare` verdict flags on this machine, with the same
# alternation as scripts/bench-pr.sh: one bench binary, sides A and B run alternately ROUNDS
# times; B runs with the test knob MISTRALRS_BENCH_SLOWDOWN=<TARGET>=<f> (a busy wait of f
# times the measured work inside the timed region of the matching case only). For each f in
# FRACTIONS and each of TRIALS trials it records whether TARGET was flagged as a regression
# and how many other cases were flagged (false alarms). f = 0 is the A/A check.
#
#   scripts/verdict-sensitivity.sh [OUTDIR]      # default target/verdict-sensitivity
#
# Environment: CASES (Criterion filter of the cases), TARGET (regex of the slowed case),
# FRACTIONS (default "0 0.02 0.05 0.10"), TRIALS (default 3), ROUNDS (default 3),
# THRESHOLD (the verdict's minimum effect, %, default the compare default),
# MISTRALRS_BENCH_PROFILE (default quick).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-target/verdict-sensitivity}")
[[ -e $out ]] && { echo "$out exists: pass another OUTDIR or remove it" >&2; exit 2; }
cases=${CASES:-'^(small_ops/smollm2-135m/(rmsnorm|rope)/t1|ffn/smollm2-135m/float/f32/decode/t1|attention/smollm2-135m/decode/naive/ctx512|kv_cache/smollm2-135m/grow512/len512|quant_matmul/smollm2-135m/q4/Q4K/o/m1)$'}
target=${TARGET:-'^ffn/smollm2-135m/float/f32/decode/t1$'}
fractions=${FRACTIONS:-0 0.02 0.05 0.10}
trials=${TRIALS:-3}
rounds=${ROUNDS:-3}
threshold=${THRESHOLD:+--threshold $THRESHOLD}
export MISTRALRS_BENCH_PROFILE=${MISTRALRS_BENCH_PROFILE:-quick}
cargo bench --bench bench_main --no-run 2>&1 | tail -1
cargo build --release --bin mistral-rs-bench 2>&1 | tail -1
bin=$(ls -t target/release/deps/bench_main-* | grep -v '\.d$' | head -1)
mkdir -p "$out"
echo "fraction,trial,target_verdict,target_change_pct,target_ci_lo,target_ci_hi,false_alarms,cases" > "$out/results.csv"
for f in $fractions; do
  for t in $(seq 1 "$trials"); do
    d=$out/f$f-t$t
    # reuse this machine's measured ceilings instead of re-measuring them in every run
    for side in A B; do
      mkdir -p "$d/$side/out"
      cp target/mistral-rs-bench/ceilings-*.json "$d/$side/out/" 2>/dev/null || true
    done
    for r in $(seq 1 "$rounds"); do
      CRITERION_HOME=$d/A/round-$r MISTRALRS_BENCH_OUT=$d/A/out "$bin" --bench "$cases" > "$d-A-$r.log" 2>&1
      CRITERION_HOME=$d/B/round-$r MISTRALRS_BENCH_OUT=$d/B/out MISTRALRS_BENCH_SLOWDOWN="$target=$f" \
        "$bin" --bench "$cases" > "$d-B-$r.log" 2>&1
    done
    rc=0
    target/release/mistral-rs-bench compare "$d/A" "$d/B" $threshold --out "$d/verdict" > /dev/null || rc=$?
    [[ $rc -le 1 ]] || { echo "compare failed (exit $rc) for $d" >&2; exit 2; }
    python3 - "$d/verdict/compare.json" "$target" "$f" "$t" >> "$out/results.csv" <<'PY'
import json, re, sys
rows = json.load(open(sys.argv[1]))["rows"]
tgt = [r for r in rows if re.search(sys.argv[2], r["case"])]
others = [r for r in rows if r not in tgt and r["verdict"] != "noise"]
t = tgt[0] if tgt else None
print(",".join(map(str, [sys.argv[3], sys.argv[4], t["verdict"] if t else "missing",
      round(t["change_pct"], 2) if t else "", round(t["ci_lo_pct"], 2) if t else "",
      round(t["ci_hi_pct"], 2) if t else "", len(others), len(rows)])))
PY
    tail -1 "$out/results.csv"
  done
done
echo "results: $out/results.csv"
