#!/usr/bin/env bash
# Makes the CUTLASS checkout a CUDA crate's build script (cudaforge) would clone from GitHub,
# from a local NVIDIA/cutlass git repository, for machines without GitHub (this one). cudaforge
# looks for ~/.cudaforge/git/checkouts/cutlass-<first 16 hex of the commit>/ at that commit and
# uses it as it is; only its headers are compiled against.
#
#   scripts/cutlass-cache.sh BUILD_RS CUTLASS_GIT
#
# BUILD_RS: the build script that names the commit (`const CUTLASS_COMMIT: &str = "…";`), e.g.
#   mistralrs-quant/build.rs of a mistral.rs 0.9 checkout, or candle-flash-attn's (the
#   `flash-attn` feature): ~/.cargo/registry/src/*/candle-flash-attn-0.10.2/build.rs
# CUTLASS_GIT: a clone or snapshot of NVIDIA/cutlass holding that commit.
# Prints the checkout's folder. Exit 2: no commit named, or the repository lacks it.
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: scripts/cutlass-cache.sh BUILD_RS CUTLASS_GIT" >&2; exit 2; }
commit=$(sed -n 's/^const CUTLASS_COMMIT: &str = "\([0-9a-f]*\)";/\1/p' "$1" 2>/dev/null | head -1 || true)
[[ -n $commit ]] || { echo "$1 names no CUTLASS_COMMIT" >&2; exit 2; }
cache=${CUDAFORGE_HOME:-$HOME/.cudaforge}/git/checkouts/cutlass-${commit:0:16}
if [[ $(git -C "$cache" rev-parse HEAD 2>/dev/null) != "$commit" ]]; then
  rm -rf "$cache"; mkdir -p "$(dirname "$cache")"
  git clone -q --no-checkout --shared "$2" "$cache"
  # a snapshot may lack some images: only the headers are compiled against
  git -C "$cache" checkout -q --detach "$commit" -- 2>/dev/null || true
  git -C "$cache" checkout -q "$commit" -- include tools/util/include 2>/dev/null || true
  [[ $(git -C "$cache" rev-parse HEAD 2>/dev/null) == "$commit" && -d $cache/include ]] \
    || { echo "CUTLASS $commit not in $2" >&2; exit 2; }
fi
echo "$cache"
