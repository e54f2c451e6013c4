#!/usr/bin/env python3
"""One CSV row of docs/verdict-sensitivity.csv from a `mistral-rs-bench pair` result.

    scripts/pair-row.py PAIR_JSON KIND CASE FRACTION TRIAL SET >> CSV
    scripts/pair-row.py --header          # the CSV's header line (the columns below)

KIND is the trial's kind (aa, aa2, work, spin); CASE the injected case (`all` for a whole
A/A set). The host column is $ROW_HOST when set (a GPU's name), else the machine's name.
Used by scripts/verdict-sensitivity.sh (CPU) and scripts/gpu-suite.sh's pair-sens (GPU).
"""
import datetime
import json
import os
import socket
import sys

HEADER = ("kind,case,fraction,trial,set,cases,flagged,confirmed_regressions,pr_pass,"
          "target_change_pct,target_ci_lo_pct,target_ci_hi_pct,target_first,target_confirm,"
          "pairs,total_s,steal_pct_max,host,date")
if sys.argv[1:] == ["--header"]:
    print(HEADER)
    sys.exit(0)
path, kind, case, f, t, set_ = sys.argv[1:7]
r = json.load(open(path))
v, rows = r["verdict"], r["rows"]
tg = next((x for x in rows if x["case"] == case), None)
steal = max([p.get("steal_pct") or 0.0 for p in r["pairs"] + r["confirm_pairs"]], default=0.0)


def fmt(x):
    return "" if x is None else f"{x:.3f}"


print(",".join(map(str, [
    kind, case, f, t, set_, v["cases"], v["flagged"], len(v["confirmed_regressions"]),
    int(v["pass"]),
    fmt(tg and tg["change_pct"]), fmt(tg and tg["ci_lo_pct"]), fmt(tg and tg["ci_hi_pct"]),
    tg["verdict"] if tg else "", (tg.get("confirm") or "") if tg else "",
    sum(x["pairs"] for x in rows), f"{r['total_s']:.1f}", f"{steal:.2f}",
    os.environ.get("ROW_HOST") or socket.gethostname(), datetime.date.today(),
])))
