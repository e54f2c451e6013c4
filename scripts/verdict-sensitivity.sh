#!/usr/bin/env bash
# Measures the paired PR verdict (`mistral-rs-bench pair`) on this machine, resumably: stop
# it at any time and run it again; trials already in the CSV are skipped. Nothing else
# should run on the machine meanwhile. Both sides are copies of one bench binary:
#  - aa:     whole-PR A/A trials of SET (default quick): every case is a clean comparison;
#            a failed PR is a false alarm.
#  - work:   one component case, B with MISTRALRS_BENCH_EXTRA_WORK=<case>=<f> (f more of
#            the case's own iterations in every timed sample: deterministic extra work),
#            for each f of FRACTIONS; the PR verdict with confirmation, as a PR gets it.
#  - spin:   the end-to-end case, B with MISTRALRS_BENCH_SLOWDOWN=<case>=<f> (a busy wait of
#            f times each timed request). Extra work cannot slow a one-request sample by
#            a fraction: it adds a whole request to every 1/f-th sample, which the median
#            ignores (tried: +10 % of work measured +0.96 %).
#  - icount: the instruction-count verdict (`mistral-rs-bench icount`, callgrind, one thread,
#            tiny preset) of one component case, B with the same extra work (A with the knob
#            at 0, so that both run with the same environment), for each f of
#            ICOUNT_FRACTIONS (0 included: an A/A trial of that case); both sides are copies of
#            one x86-64-v3 build (target/icount: valgrind 3.19 runs no AVX-512).
#  - aa2:    whole-PR A/A trials of SET between two builds of equivalent code, AA2_A and AA2_B
#            (two bench binaries, e.g. the bin/ of a `scripts/bench-pr.sh` run whose change
#            touches no measured code): what one binary copied to both sides cannot show, two
#            code layouts. Run only when asked (ONLY=aa2).
# The trials interleave (trial 1 of everything, then trial 2, ...), so a stopped study
# still has some of each.
#
#   scripts/verdict-sensitivity.sh [CSV]      # default docs/verdict-sensitivity.csv
#
# Environment: TRIALS (default 10), SET (default quick), FRACTIONS (default
# "0.02 0.03 0.05 0.10"), TARGETS (component case ids, space-separated), E2E_TARGET (an
# end-to-end case id; FRACTIONS_E2E default "0.05 0.10", empty for none), PAIR_ARGS (more
# options of `pair` for every trial, e.g. "--rounds 32": a study of other settings belongs in
# its own CSV, whose rows do not record them; pair.json does), ONLY (aa, inject: work and
# spin, icount, or aa2 with AA2_A and AA2_B), ICOUNT_TARGETS, ICOUNT_FRACTIONS (default "0 0.02 0.03 0.05 0.10"), WORK (per-trial
# pair.json folders, default target/verdict-sensitivity), and the usual MISTRALRS_BENCH_*.
set -euo pipefail
cd "$(dirname "$0")/.."
csv=$(realpath -m "${1:-docs/verdict-sensitivity.csv}")
work=$(realpath -m "${WORK:-target/verdict-sensitivity}")
trials=${TRIALS:-10}
set_=${SET:-quick}
fractions=${FRACTIONS:-0.02 0.03 0.05 0.10}
fractions_e2e=${FRACTIONS_E2E-0.05 0.10}
targets=${TARGETS:-small_ops/smollm2-135m/rope/t1 ffn/smollm2-135m/float/f32/decode/t1 quant_matmul/smollm2-135m/q4/Q4K/gate_up/m1}
e2e_target=${E2E_TARGET:-generation/smollm2-135m-synthetic-bf16/decode/tg32/depth0}
icount_targets=${ICOUNT_TARGETS:-ffn/tiny/float/f32/decode/t1 small_ops/tiny/rope/t1}
icount_fractions=${ICOUNT_FRACTIONS:-0 0.02 0.03 0.05 0.10}
only=${ONLY:-}
aa2_a=${AA2_A:-} aa2_b=${AA2_B:-}
if [[ $only == aa2 ]]; then
  [[ -x $aa2_a && -x $aa2_b ]] || { echo "ONLY=aa2 needs AA2_A and AA2_B: two bench binaries" >&2; exit 2; }
  aa2_a=$(realpath "$aa2_a") aa2_b=$(realpath "$aa2_b")
fi
mkdir -p "$work/bin" "$(dirname "$csv")"
cargo build --release --bin mistral-rs-bench 2>&1 | tail -1
# Two files a build, so that the two sides are two programs as in a real comparison.
if [[ $only != icount && $only != aa2 ]]; then
  bin=$(cargo bench --bench bench_main --no-run --message-format=json-render-diagnostics | scripts/cargo-artifact.py bench_main)
  cp "$bin" "$work/bin/bench-A"; cp "$bin" "$work/bin/bench-B"
fi
if [[ -z $only || $only == icount ]]; then
  bin=$(RUSTFLAGS="-C target-cpu=x86-64-v3" CARGO_TARGET_DIR=target/icount \
    cargo bench --bench bench_main --no-run --message-format=json-render-diagnostics | scripts/cargo-artifact.py bench_main)
  cp "$bin" "$work/bin/icount-A"; cp "$bin" "$work/bin/icount-B"
fi
header=$(scripts/pair-row.py --header)
[[ -s $csv ]] || echo "$header" > "$csv"
[[ $(head -1 "$csv") == "$header" ]] || { echo "$csv has another header: pass another CSV" >&2; exit 2; }
done_key() { grep -q "^$1,$2,$3,$4,$set_," "$csv"; }

icount_trial() { # case fraction trial: one row of kind icount
  local case=$1 f=$2 t=$3
  done_key icount "$case" "$f" "$t" && return 0
  local d=$work/icount-${case//\//_}-f$f-t$t
  rm -rf "$d"
  echo "== icount $case f=$f trial $t"
  local rc=0
  # Both sides read the knob (A at 0), its value in one width: a count is exact for one heap
  # and stack layout, and a variable on B alone moved RoPE's count by +2.0 % in malloc/free
  # with no extra work (docs/data/icount-env-2026-12-07).
  target/release/mistral-rs-bench icount --a "$work/bin/icount-A" --b "$work/bin/icount-B" --set full \
    --filter "^${case}\$" --a-env "MISTRALRS_BENCH_EXTRA_WORK=^${case}\$=$(printf %.3f 0)" \
    --b-env "MISTRALRS_BENCH_EXTRA_WORK=^${case}\$=$(printf %.3f "$f")" --out "$d" > "$d.log" 2>&1 || rc=$?
  [[ $rc -le 1 ]] || { echo "icount failed (exit $rc), see $d.log" >&2; exit 2; }
  python3 - "$d/icount.json" "$case" "$f" "$t" "$set_" >> "$csv" <<'PY'
import json, sys, socket, datetime
r = json.load(open(sys.argv[1]))
case, f, t, set_ = sys.argv[2:6]
v, rows = r["verdict"], r["rows"]
tg = next(x for x in rows if x["case"] == case)
flagged = sum(x["verdict"] != "noise" for x in rows)
# a count has no interval and no confirmation pass; "pairs" is the counted iterations
print(",".join(map(str, ["icount", case, f, t, set_, v["cases"], flagged, len(v["regressions"]),
    int(v["pass"]), f"{tg['change_pct']:.3f}", "", "", tg["verdict"], "",
    tg["a"]["iters"], f"{r['wall_s']:.1f}", "", socket.gethostname(), datetime.date.today()])))
PY
  tail -1 "$csv"
}

trial() { # kind case fraction trial
  local kind=$1 case=$2 f=$3 t=$4
  done_key "$kind" "$case" "$f" "$t" && return 0
  local d=$work/$kind-${case//\//_}-f$f-t$t
  rm -rf "$d"
  local a=$work/bin/bench-A b=$work/bin/bench-B
  [[ $kind == aa2 ]] && { a=$aa2_a; b=$aa2_b; }
  local args=(pair --a "$a" --b "$b" --out "$d")
  # shellcheck disable=SC2206 # PAIR_ARGS: extra options of `pair`, split on spaces
  args+=(${PAIR_ARGS:-})
  if [[ $kind == work ]]; then
    args+=(--set full --filter "^${case}\$" --b-env "MISTRALRS_BENCH_EXTRA_WORK=^${case}\$=$f")
  elif [[ $kind == spin ]]; then
    args+=(--set full --filter "^${case}\$" --b-env "MISTRALRS_BENCH_SLOWDOWN=^${case}\$=$f")
  else
    args+=(--set "$set_")
  fi
  echo "== $kind $case f=$f trial $t"
  local rc=0
  target/release/mistral-rs-bench "${args[@]}" > "$d.log" 2>&1 || rc=$?
  [[ $rc -le 1 ]] || { echo "pair failed (exit $rc), see $d.log" >&2; exit 2; }
  scripts/pair-row.py "$d/pair.json" "$kind" "$case" "$f" "$t" "$set_" >> "$csv"
  tail -1 "$csv"
}

for t in $(seq 1 "$trials"); do
  if [[ -z $only || $only == inject ]]; then
    for c in $targets; do for f in $fractions; do trial work "$c" "$f" "$t"; done; done
    for f in $fractions_e2e; do trial spin "$e2e_target" "$f" "$t"; done
  fi
  if [[ -z $only || $only == icount ]]; then
    for c in $icount_targets; do for f in $icount_fractions; do icount_trial "$c" "$f" "$t"; done; done
  fi
  if [[ -z $only || $only == aa ]]; then trial aa all 0 "$t"; fi
  if [[ $only == aa2 ]]; then trial aa2 all 0 "$t"; fi
done
echo "results: $csv"
