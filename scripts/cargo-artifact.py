#!/usr/bin/env python3
"""The path of the executable cargo built for one target, read from cargo's JSON messages.

    cargo bench --bench bench_main --no-run --message-format=json-render-diagnostics \
        | scripts/cargo-artifact.py bench_main

With `json-render-diagnostics` the compiler's messages go to stderr as cargo prints them;
stdout carries only the JSON stream read here. The path comes from cargo, not from the newest
file in deps/ (which is another build's when cargo reused a binary).
"""
import json
import sys

if len(sys.argv) != 2:
    sys.exit("usage: cargo-artifact.py TARGET_NAME  (cargo's JSON messages on stdin)")
paths = [
    m["executable"]
    for m in map(json.loads, filter(str.strip, sys.stdin))
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable")
]
if not paths:
    sys.exit(f"cargo reported no executable for {sys.argv[1]}")
print(paths[-1])
