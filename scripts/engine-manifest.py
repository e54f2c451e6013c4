#!/usr/bin/env python3
"""Points a copy of this crate's Cargo.toml at a local mistral.rs checkout.

    scripts/engine-manifest.py CHECKOUT MANIFEST [--candle DIR]

- every mistralrs-* crate of the checkout's workspace is patched in by path, and this crate's
  `=0.8.1` pins move to the checkout's versions (or cargo ignores the patch);
- the checkout's Cargo.lock replaces this crate's (the engine's dependencies at its versions);
- candle follows the engine: this crate's candle-core, candle-nn, candle-transformers and
  candle-flash-attn take the candle of the checkout's workspace (a crates.io version, pinned,
  or a git revision); `--candle DIR` patches that git source with a local candle checkout of the
  same revision (this crate then takes it by path), for machines without network;
- the API form of src/api/ is guessed from the checkout's version: `engine-0_9` for 0.9 or
  newer, `engine-0_8_23` for 0.8.23 to 0.8.x (0.9's API but for the embedding), none (the
  0.8.1 form) below; printed for the caller's cargo. The version does not fix the form of a
  revision between two releases: scripts/build-engine.sh (OTHER_API=1) tries the others.

Prints a JSON summary on stdout: the patched crates, the candle source, the cargo features.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

CANDLE_CRATES = ["candle-core", "candle-nn", "candle-transformers", "candle-flash-attn"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkout")
    ap.add_argument("manifest")
    ap.add_argument("--candle", help="local candle checkout at the revision the engine pins")
    a = ap.parse_args()
    ws_path = os.path.join(a.checkout, "Cargo.toml")
    with open(ws_path, "rb") as f:
        ws = tomllib.load(f)
    deps = ws.get("workspace", {}).get("dependencies", {})
    candle = deps.get("candle-core")
    if candle is None:
        sys.exit(f"{ws_path}: no [workspace.dependencies] candle-core: not a mistral.rs workspace?")
    if isinstance(candle, str):
        candle = {"version": candle}
    version = ws.get("workspace", {}).get("package", {}).get("version")
    if version is None:
        sys.exit(f"{ws_path}: no [workspace.package] version")
    members = []
    for m in ws["workspace"].get("members", []):
        cm = os.path.join(a.checkout, m, "Cargo.toml")
        if not os.path.exists(cm):
            continue
        with open(cm, "rb") as f:
            name = tomllib.load(f)["package"]["name"]
        if name.startswith("mistralrs"):
            members.append((name, os.path.realpath(os.path.join(a.checkout, m))))

    toml = open(a.manifest).read()
    # every mistralrs crate this crate pins must come from the checkout: one left at its
    # crates.io pin would mix two engines in one build
    pinned = re.findall(r'^(mistralrs[a-z-]*) = ', toml, flags=re.M)
    missing = [p for p in pinned if p not in dict(members)]
    if missing:
        sys.exit(f"{ws_path}: the checkout has no {', '.join(missing)} (this crate needs it)")
    for name, _ in members:
        # this crate pins =0.8.1: pin the checkout's version instead
        toml = re.sub(
            rf'^({re.escape(name)} = (?:\{{ version = )?)"=[^"]+"',
            rf'\g<1>"={version}"',
            toml,
            flags=re.M,
        )
    if "git" in candle:
        src = {"git": candle["git"], "rev": candle.get("rev")}
        if src["rev"] is None:
            sys.exit(f"{ws_path}: candle from git without a rev: the build would not be reproducible")
        # offline (--candle): this crate takes the local candle by path, the engine's git
        # dependency is patched to the same path, and the checkout's Cargo.lock (copied below)
        # holds the git revision, so cargo never asks the network for it
        git = (
            f'path = "{os.path.realpath(a.candle)}/{{c}}"'
            if a.candle
            else f'git = "{src["git"]}", rev = "{src["rev"]}"'
        )
        for c in CANDLE_CRATES:
            # `c = "=X"` and `c = { version = "=X", optional = true }` alike
            g = git.replace("{c}", c)
            toml = re.sub(rf'^({re.escape(c)} = )"=[^"]+"', rf"\g<1>{{ {g} }}", toml, flags=re.M)
            toml = re.sub(rf'^({re.escape(c)} = \{{ )version = "=[^"]+"', rf"\g<1>{g}", toml, flags=re.M)
        candle_desc = f'{src["git"]}@{src["rev"]}'
    else:
        v = candle["version"].lstrip("=")
        for c in CANDLE_CRATES:
            toml = re.sub(rf'^({re.escape(c)} = (?:\{{ version = )?)"=[^"]+"', rf'\g<1>"={v}"', toml, flags=re.M)
        candle_desc = f"crates.io {v}"
    lines = ["", "[patch.crates-io]"]
    lines += [f'{n} = {{ path = "{d}" }}' for n, d in members]
    if "git" in candle and a.candle:
        cdir = os.path.realpath(a.candle)
        # a candle clone must be at the pinned revision; a tree extracted by `git archive`
        # has no .git of its own (one lying inside another repository is not that repository)
        git = subprocess.run(["git", "-C", cdir, "rev-parse", "--show-toplevel", "HEAD"], capture_output=True, text=True)
        top, head = (git.stdout.split() + ["", ""])[:2] if git.returncode == 0 else ("", "")
        if os.path.realpath(top or "/nonexistent") == cdir and not head.startswith(candle["rev"]):
            sys.exit(f"{cdir} is at {head}, the engine pins candle {candle['rev']}")
        lines += ["", f'[patch."{candle["git"]}"]']
        for c in CANDLE_CRATES + ["candle-flash-attn-v3", "candle-metal-kernels", "candle-ug"]:
            if os.path.exists(os.path.join(cdir, c, "Cargo.toml")):
                lines.append(f'{c} = {{ path = "{os.path.join(cdir, c)}" }}')
    # the engine's own lock: its dependencies at the versions its developers built with
    lock = os.path.join(a.checkout, "Cargo.lock")
    if os.path.exists(lock):
        shutil.copy(lock, os.path.join(os.path.dirname(os.path.abspath(a.manifest)), "Cargo.lock"))
    with open(a.manifest, "w") as f:
        f.write(toml + "\n".join(lines) + "\n")
    v = tuple(int(x) for x in re.findall(r"\d+", version)[:3])
    features = ["engine-0_9"] if v[:2] >= (0, 9) else ["engine-0_8_23"] if v >= (0, 8, 23) else []
    json.dump(
        {
            "engine_version": version,
            "patched": [n for n, _ in members],
            "candle": candle_desc,
            "features": features,
        },
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
