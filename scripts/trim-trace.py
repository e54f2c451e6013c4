#!/usr/bin/env python3
"""Trims an in-situ trace (MISTRALRS_BENCH_INSITU_DUMP) into a small test fixture: the ticks
of one phase's windows only (at most --ticks of them), the stacks they use, registry paths
shortened to the crate folder, function names cut at 100 characters; a GPU trace keeps the
device activities inside the trimmed windows (and the kernel names they use). Usage:
trim-trace.py IN OUT [--phase decode] [--ticks 80]"""
import argparse, json, re

ap = argparse.ArgumentParser()
ap.add_argument("inp"); ap.add_argument("out")
ap.add_argument("--phase", default="decode"); ap.add_argument("--ticks", type=int, default=80)
a = ap.parse_args()
t = json.load(open(a.inp))
wins = [w for w in t["windows"] if w["phase"] == a.phase]
inside = lambda at: any(w["start_ns"] <= at <= w["end_ns"] for w in wins)
# keep the tick before the first kept one too: it sets the first tick's weight
idx = [i for i, k in enumerate(t["ticks"]) if inside(k["at_ns"])][: a.ticks]
keep = sorted(set(idx) | {i - 1 for i in idx if i > 0})
ticks = [t["ticks"][i] for i in keep]
used = sorted({s["stack"] for k in ticks for s in k["samples"]})
remap = {old: new for new, old in enumerate(used)}
for k in ticks:
    for s in k["samples"]:
        s["stack"] = remap[s["stack"]]
short = lambda p: re.sub(r"^.*/registry/src/[^/]+/", "", p) if p else p
stacks = []
for old in used:
    st = t["stacks"][old]
    for f in st:
        if "file" in f:
            f["file"] = short(f["file"])
        if len(f["func"]) > 100:  # long generic arguments; no rule reads them
            f["func"] = f["func"][:100]
    stacks.append(st)
last = ticks[-1]["at_ns"]
t.update(ticks=ticks, stacks=stacks,
         windows=[dict(w, end_ns=min(w["end_ns"], last)) for w in wins if w["start_ns"] <= last])
if t.get("gpu"):
    g = t["gpu"]
    win = t["windows"]
    acts = [x for x in g["activities"]
            if any(x["end_ns"] > w["start_ns"] and x["start_ns"] < w["end_ns"] for w in win)]
    names = sorted({x["name"] for x in acts if x.get("name", 2**32 - 1) != 2**32 - 1})
    nmap = {old: new for new, old in enumerate(names)}
    for x in acts:
        if "name" in x and x["name"] in nmap:
            x["name"] = nmap[x["name"]]
    g.update(activities=acts, names=[g["names"][i] for i in names])
    print(f"{len(acts)} device activities, {len(names)} kernel names")
json.dump(t, open(a.out, "w"), separators=(",", ":"))
print(f"{len(ticks)} ticks, {len(stacks)} stacks -> {a.out}")
