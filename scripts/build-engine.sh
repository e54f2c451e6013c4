#!/usr/bin/env bash
# Builds the suite against one mistral.rs: the one build step of bench-mistralrs.sh and
# bisect-mistralrs.sh, and of a CUDA side carried to a GPU machine.
#
#   scripts/build-engine.sh SIDE DEST
#
# SIDE: `release` (the crates.io mistralrs-core this suite pins) or a mistral.rs checkout at
# any revision, patched in with scripts/engine-manifest.py (its mistralrs-* crates by path,
# its candle, its Cargo.lock, the API feature of src/api/). DEST gets:
#   bench          the bench binary (the path cargo reports for the bench_main target)
#   cli            with CLI=1, the side's JSON binary
#   patched/       the patched copy of this crate (checkout sides), manifest.json
#   build.log, build-time (seconds), features (the cargo features it was built with)
# Environment:
#   CANDLE       a candle checkout at the revision the checkout pins (machines without network)
#   CUTLASS_GIT  a NVIDIA/cutlass git repository: CUDA builds of mistral.rs 0.9 and newer
#                compile mistralrs-quant against CUTLASS, which its build script (cudaforge)
#                clones from GitHub into ~/.cudaforge; offline, that checkout is made from here
#   FEATURES     more cargo features (e.g. cuda,cupti); RUSTFLAGS as for any cargo build
#                (a CUDA side for another host: RUSTFLAGS="-C target-cpu=x86-64-v3")
#   ENGINE_REV   the revision recorded in every result (default: `git describe` of SIDE)
#   OTHER_API=1  when the build fails, try the other API forms of src/api/ (a revision between
#                two releases: its version does not say which)
#   CARGO_TARGET_DIR  default: this crate's target/ (sides share the dependencies they have
#                in common)
# Exit status: 0 built, 125 does not build (git bisect's "skip"), 2 bad arguments.
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: scripts/build-engine.sh SIDE DEST   (SIDE: release or PATH/TO/mistral.rs)" >&2; exit 2; }
side=$1; dest=$(realpath -m "$2")
[[ $side == release || -f $side/Cargo.toml ]] || { echo "$side: neither 'release' nor a mistral.rs checkout (no Cargo.toml)" >&2; exit 2; }
[[ $side == release ]] || side=$(cd "$side" && pwd)
# cargo runs inside the patched copy: a relative target folder would land (and be deleted) there
[[ -n ${CARGO_TARGET_DIR:-} ]] && CARGO_TARGET_DIR=$(realpath -m "$CARGO_TARGET_DIR")
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$dest"
t0=$SECONDS
features=${FEATURES:-}
dir=$root
if [[ $side != release ]]; then
  src=$side
  dir=$dest/patched
  rm -rf "$dir"; mkdir -p "$dir"
  # .cargo too: outside this folder it is the only config with the rustflags (inside, cargo
  # passes them twice, which BuildInfo counts as one build)
  cp -r Cargo.toml Cargo.lock build.rs src benches models.toml .cargo "$dir/"
  [[ -d models ]] && ln -s "$root/models" "$dir/models"
  python3 scripts/engine-manifest.py "$src" "$dir/Cargo.toml" ${CANDLE:+--candle "$CANDLE"} > "$dest/manifest.json" \
    || { echo "$src cannot be patched in (engine-manifest.py above): it does not build" >&2; exit 125; }
  api=$(python3 -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["features"]))' "$dest/manifest.json")
  export MISTRALRS_BENCH_ENGINE_REV="${ENGINE_REV:-$(git -C "$src" describe --always --tags 2>/dev/null || basename "$src")} ($src)"
  echo "== $src at $MISTRALRS_BENCH_ENGINE_REV, $(cat "$dest/manifest.json")" >&2
  if [[ -n ${CUTLASS_GIT:-} && ,$features, == *,cuda,* && -f $src/mistralrs-quant/build.rs ]] \
    && grep -q '^const CUTLASS_COMMIT' "$src/mistralrs-quant/build.rs"; then
    # the CUTLASS commit the checkout's mistralrs-quant asks for, where cudaforge caches it
    "$root/scripts/cutlass-cache.sh" "$src/mistralrs-quant/build.rs" "$CUTLASS_GIT" > /dev/null
  fi
else
  api=""
  unset MISTRALRS_BENCH_ENGINE_REV
  echo "== mistralrs-core from crates.io" >&2
fi

# the API forms of src/api/ ("", engine-0_8_mid, engine-0_8_23, engine-0_9): the guess, then with OTHER_API=1 the others,
# nearest first
tries=("$api")
if [[ ${OTHER_API:-0} == 1 ]]; then
  case $api in
    engine-0_9) tries+=(engine-0_8_23 "" engine-0_8_mid) ;;
    engine-0_8_23) tries+=(engine-0_9 "" engine-0_8_mid) ;;
    *) tries+=(engine-0_8_23 engine-0_8_mid engine-0_9) ;;
  esac
fi
built="" ok=0
: > "$dest/build.log"
for a in "${tries[@]}"; do
  f=${features}${features:+${a:+,}}$a
  echo "== features [$f]" >> "$dest/build.log"
  # `cargo build --profile bench` builds what `cargo bench --no-run` does (the same units) and
  # takes --keep-going: when this crate does not compile with one form, the engine's crates
  # still finish, and the next form reuses them
  if (cd "$dir" && cargo build --profile bench ${f:+--features $f} --bench bench_main --keep-going --message-format=json-render-diagnostics 2>> "$dest/build.log" \
      | "$root/scripts/cargo-artifact.py" bench_main > "$dest/bench-path"); then
    built=$f ok=1; break
  fi
done
if [[ $ok == 0 ]]; then
  echo "$side does not build (see $dest/build.log)" >&2
  exit 125
fi
cp "$(cat "$dest/bench-path")" "$dest/bench"
echo "$built" > "$dest/features"
if [[ ${CLI:-0} == 1 ]]; then
  # the side's JSON binary too (its release profile compiles mistralrs-core once more)
  (cd "$dir" && cargo build --release ${built:+--features $built} --bin mistral-rs-bench --message-format=json-render-diagnostics 2>> "$dest/build.log" \
    | "$root/scripts/cargo-artifact.py" mistral-rs-bench > "$dest/cli-path")
  cp "$(cat "$dest/cli-path")" "$dest/cli"
fi
if [[ $side != release ]]; then
  # the build must really use the checkout (a path package has no registry source)
  cargo metadata --format-version 1 --manifest-path "$dir/Cargo.toml" | python3 -c '
import json, sys
m = json.load(sys.stdin)
reg = [p["name"] for p in m["packages"] if p["name"] == "mistralrs-core" and p["source"]]
sys.exit("the patched build still uses mistralrs-core from crates.io" if reg else 0)'
fi
echo $((SECONDS - t0)) > "$dest/build-time"
echo "built $side in $((SECONDS - t0)) s, features [$built]: $dest/bench" >&2
