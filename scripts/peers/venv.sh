#!/usr/bin/env bash
# Makes (once) the Python environment the PyTorch peer runs in, and prints its python path.
# CPU machines: torch, transformers, safetensors and gguf from PyPI into target/peers-venv.
# The GPU machine already has torch and transformers (and nothing can be installed there):
# set PEERS_PYTHON=python3 there instead of running this.
#
#   scripts/peers/venv.sh            # -> target/peers-venv/bin/python
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${PEERS_VENV:-$PWD/target/peers-venv}
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import torch, transformers, safetensors, gguf, accelerate' 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --upgrade pip >&2
  # Pinned to what the GPU machine has, so both sides run the same framework versions.
  "$venv/bin/pip" install --quiet 'torch==2.11.*' 'transformers==5.17.*' safetensors 'gguf>=0.10' accelerate numpy >&2
fi
echo "$venv/bin/python"
