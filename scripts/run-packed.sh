#!/usr/bin/env bash
# Runs a packed build (scripts/pack-cuda.sh) on the machine it was carried to.
#
#   scripts/run-packed.sh PACKDIR bench [criterion args...]   # the bench suite
#   scripts/run-packed.sh PACKDIR bin   [args...]              # the JSON binary
#
# Binaries are unpacked once into $MRB_HOME (default /tmp/mrb). Results go to
# $CARGO_TARGET_DIR (default /tmp/mrb/target): criterion/ and mistral-rs-bench/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pack=$1; what=$2; shift 2
home=${MRB_HOME:-/tmp/mrb}
mkdir -p "$home"
if [[ ! -f $pack/SHA256SUMS ]]; then
  [[ -x $home/bench_main && -x $home/mistral-rs-bench ]] || { echo "no packed build at $pack and none unpacked in $home" >&2; exit 2; }
else
  (cd "$pack" && sha256sum -c --quiet SHA256SUMS)
  for f in "$pack"/*.xz; do
    n=$(basename "$f" .xz)
    if [[ ! -x $home/$n ]] || ! cmp -s "$pack/COMMIT" "$home/COMMIT" 2>/dev/null; then
      xz -dc "$f" > "$home/$n"; chmod +x "$home/$n"
    fi
  done
  cp "$pack/COMMIT" "$home/COMMIT" 2>/dev/null || true
fi
# CUPTI (a build with --features cupti links libcupti): the toolkit's extras folder
for d in /usr/local/cuda-13.0/extras/CUPTI/lib64 /usr/local/cuda/extras/CUPTI/lib64; do
  [[ -d $d ]] && export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
done
export MISTRALRS_BENCH_ROOT=$root
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$home/target}
cd "$root"
case $what in
  bench) exec "$home/bench_main" --bench "$@" ;;
  bin) exec "$home/mistral-rs-bench" "$@" ;;
  *) echo "usage: $0 PACKDIR bench|bin [args...]" >&2; exit 2 ;;
esac
