#!/usr/bin/env python3
"""llama.cpp's decode step split by pipeline part, from its own run (issue 16): the other side
of the suite's in-situ split of mistral.rs, on the same GGUF, threads and decode workload.

How: ggml's scheduler calls an evaluation callback (`llama_context_params.cb_eval`, the hook
llama.cpp's own `llama-eval-callback` and imatrix tools use) for each node of the graph it is
about to compute, asking whether the caller wants that node's result; for a node the caller
wants, it computes every node up to it, synchronises, and calls back again. A first decode
step observes every node and learns the graph's node order and each node's part (from its
op and the weight it multiplies: `blk.N.attn_q.weight` is a Q/K/V/O projection,
`blk.N.ffn_down.weight` the FFN's down projection, ...). The timed steps then ask for the
last node of each run of one part only, so each synchronised range is one part, and the host
clock between two callbacks is that part's time. What llama_decode spends before its first
node (building and scheduling the graph) is `host_engine`; reading the logits and the
arg-max is `sampling`.

Each range's synchronisation costs what a step without the callback does not (a thread-pool
round and the Python callback). That overhead is measured: the same steps without the
callback, in alternating rounds; its per-range average is taken off every range
(`corrected`), so the corrected parts sum to the step without the callback. Both the raw and
the corrected split are written.

    python3 scripts/peers/llamacpp_split.py --llamacpp target/llamacpp/cpu \\
        --gguf models/SmolLM2-135M-Instruct.Q4_1.gguf --threads 2 --out split.json
    python3 scripts/peers/llamacpp_split.py --classify nodes.json   # parts of recorded nodes
"""
import argparse
import ctypes
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_common as pc  # noqa: E402

# ggml ops that compute nothing (a new view of the same data): they join the part of the node
# after them, so they do not split a part's range.
VIEW_OPS = {"NONE", "VIEW", "RESHAPE", "PERMUTE", "TRANSPOSE"}

# The suite's part names (src/device/insitu/rules.rs `Part`, snake_case).
PARTS = ["embedding", "rmsnorm", "qkvo_proj", "rope", "kv_write", "attention", "ffn_gate_up",
         "ffn_act", "ffn_down", "lm_head", "model_other", "sampling", "host_engine"]


def part_of(name, op, w):
    """The part of one graph node: its name, its op (ggml_op_desc) and the name of its first
    source (the weight, for a matrix product)."""
    w = w or ""
    if op in ("MUL_MAT", "MUL_MAT_ID"):
        if w.startswith("blk."):
            if any(f".{k}." in w for k in ("attn_q", "attn_k", "attn_v", "attn_output", "attn_qkv")):
                return "qkvo_proj"
            if ".ffn_gate." in w or ".ffn_up." in w or ".ffn_gate_up." in w:
                return "ffn_gate_up"
            if ".ffn_down." in w:
                return "ffn_down"
        if w.startswith("output.") or w.startswith("token_embd."):
            return "lm_head"  # a tied LM head multiplies the embedding matrix
        return "attention"  # K·Q and V·softmax: products with the cache, not with weights
    if op == "GET_ROWS" and w.startswith("token_embd."):
        return "embedding"
    if op == "ROPE":
        return "rope"
    if op == "RMS_NORM" or (op == "MUL" and "norm" in name):
        return "rmsnorm"
    if op in ("SOFT_MAX", "FLASH_ATTN_EXT"):
        return "attention"
    if op in ("SET_ROWS", "CPY") and ("cache" in name or "cache" in w):
        return "kv_write"
    if name.startswith("ffn_") and op in ("GLU", "SILU", "MUL", "SWIGLU", "GEGLU") or op == "GLU":
        return "ffn_act"
    return "model_other"


def merge_views(nodes):
    """Gives each view node (no work) the part of the next node that works (the last views,
    of the one before), so a run of one part is not cut by the views between its nodes."""
    out = list(nodes)
    nxt = None
    for k in range(len(out) - 1, -1, -1):
        name, op, w, part = out[k]
        if op in VIEW_OPS:
            if nxt is not None:
                out[k] = (name, op, w, nxt)
        else:
            nxt = part
    prev = None
    for k, (name, op, w, part) in enumerate(out):
        if op not in VIEW_OPS:
            prev = part
        elif prev is not None and k > 0 and all(n[1] in VIEW_OPS for n in out[k:]):
            out[k] = (name, op, w, prev)
    return out


class Tensor(ctypes.Structure):
    """struct ggml_tensor of the vendored ggml.h (checked against ggml_get_name at run time)."""
    _fields_ = [("type", ctypes.c_int), ("buffer", ctypes.c_void_p), ("ne", ctypes.c_int64 * 4),
                ("nb", ctypes.c_size_t * 4), ("op", ctypes.c_int), ("op_params", ctypes.c_int32 * 16),
                ("flags", ctypes.c_int32), ("src", ctypes.c_void_p * 10), ("view_src", ctypes.c_void_p),
                ("view_offs", ctypes.c_size_t), ("data", ctypes.c_void_p), ("name", ctypes.c_char * 64),
                ("extra", ctypes.c_void_p), ("padding", ctypes.c_char * 8)]


class Splitter:
    """The evaluation callback and its clock."""

    def __init__(self, install):
        base = ctypes.CDLL(os.path.join(install, "lib", "libggml-base.so"))
        base.ggml_op_desc.restype = ctypes.c_char_p
        base.ggml_op_desc.argtypes = [ctypes.c_void_p]
        base.ggml_get_name.restype = ctypes.c_char_p
        base.ggml_get_name.argtypes = [ctypes.c_void_p]
        self.base = base
        self.learned = None     # [(name, op, weight, part)] of one decode graph, in ask order
        self.learning = []
        self.i = 0              # index of the next ask in the current graph
        self.mismatch = 0
        self.mark = 0.0
        self.first_ask = True
        self.acc = {p: 0.0 for p in PARTS}
        self.ranges = 0
        self.pending = None
        self.active = False     # only timed decode steps are observed and counted

    def node(self, ptr):
        t = Tensor.from_address(ptr)
        name = t.name.decode(errors="replace")
        if name != self.base.ggml_get_name(ptr).decode(errors="replace"):
            raise RuntimeError("struct ggml_tensor's layout is not the vendored header's (name differs)")
        w = Tensor.from_address(t.src[0]).name.decode(errors="replace") if t.src[0] else ""
        op = self.base.ggml_op_desc(ptr).decode()
        return name, op, w

    def start_step(self):
        self.i = 0
        self.first_ask = True
        self.mark = time.perf_counter()

    def callback(self, ptr, ask, _user):
        if not self.active:  # a prefill or an untimed step: one range, nothing counted
            return False if ask else True
        now = time.perf_counter()
        if ask:
            if self.first_ask:  # graph build and scheduling, before the first node
                self.acc["host_engine"] += now - self.mark
                self.mark, self.first_ask = now, False
            if self.learned is None:
                name, op, w = self.node(ptr)
                self.learning.append((name, op, w, part_of(name, op, w)))
                return True
            i, self.i = self.i, self.i + 1
            if i >= len(self.learned):
                self.mismatch += 1
                self.pending = "model_other"
                return True
            self.pending = self.learned[i][3]
            # the last node of a run of one part: synchronise there
            return i + 1 == len(self.learned) or self.learned[i + 1][3] != self.pending
        if self.learned is not None:
            self.acc[self.pending] += now - self.mark
            self.ranges += 1
        self.mark = time.perf_counter()
        return True

    def end_learning(self):
        self.learned, self.learning = merge_views(self.learning), []
        self.acc = {p: 0.0 for p in PARTS}
        self.ranges = 0


def run(a):
    import llamacpp_peers as lp
    ll = lp.load_binding(a.llamacpp)
    ll.llama_backend_init()
    lp.quiet_logs(ll)
    sp = Splitter(a.llamacpp)
    cb = ll.ggml_backend_sched_eval_callback(sp.callback)
    n_ctx = 512
    plain = lp.Engine(ll, a.gguf, False, a.threads, n_ctx, 1, 512)
    split = lp.Engine(ll, a.gguf, False, a.threads, n_ctx, 1, 512, cb_eval=cb)
    lo = min(pc.FIRST_WORD, plain.vocab - 1)
    ids = pc.prompt_ids(1, lo, plain.vocab, 8)  # decode at depth 0, as the suite's case

    def steps(e, n, counted=False):
        """n greedy decode steps after an untimed prefill; ms per step."""
        e.clear()
        nxt = e.prefill([ids])
        out = []
        for k in range(n):
            sp.active = counted
            sp.start_step()
            t = time.perf_counter()
            e._decode([(nxt[0], len(ids) + k, 0, True)])
            t1 = time.perf_counter()
            nxt = [e.argmax(0)]
            t2 = time.perf_counter()
            if counted:
                sp.acc["host_engine"] += t1 - sp.mark  # after the last node
                sp.acc["sampling"] += t2 - t1
            sp.active = False
            out.append((t2 - t) * 1e3)
        return out

    # learn the graph: one step observing every node (the prefill's graphs are not kept)
    split.clear()
    nxt = split.prefill([ids])
    sp.active = True
    sp.start_step()
    split._decode([(nxt[0], len(ids), 0, True)])
    sp.active = False
    sp.end_learning()
    plain_ms, split_ms = [], []
    steps(plain, 8)  # warm-up
    for _ in range(a.rounds):
        plain_ms += steps(plain, a.tokens)
        split_ms += steps(split, a.tokens, counted=True)
    n_steps = len(split_ms)
    raw = {p: 1e3 * s / n_steps for p, s in sp.acc.items()}
    per_range = sp.ranges / n_steps
    t_plain, t_split = statistics.mean(plain_ms), statistics.mean(split_ms)
    over = (t_split - t_plain) / max(sp.ranges / n_steps, 1)  # ms per synchronised range
    ranges_of = {p: 0 for p in PARTS}
    runs = [n[3] for k, n in enumerate(sp.learned) if k + 1 == len(sp.learned) or sp.learned[k + 1][3] != n[3]]
    for p in runs:
        ranges_of[p] += 1
    corrected = {p: raw[p] - over * ranges_of[p] for p in PARTS}
    plain.close(), split.close()
    return {
        "engine": "llama.cpp", "gguf": a.gguf, "threads": a.threads, "depth": 0,
        "tokens_per_round": a.tokens, "rounds": a.rounds,
        "build": json.load(open(os.path.join(a.llamacpp, "build.json"))),
        "cpu": pc.cpu_name(),
        "method": "ggml scheduler eval callback; one synchronised range per run of one part; "
                  "corrected = raw minus the measured per-range overhead",
        "ms_per_token": {"without_callback": t_plain, "with_callback": t_split,
                         "without_median": statistics.median(plain_ms),
                         "with_median": statistics.median(split_ms)},
        "ranges_per_token": per_range, "overhead_ms_per_range": over,
        "graph_nodes": len(sp.learned), "mismatched_asks": sp.mismatch,
        "parts_raw_ms": raw, "parts_corrected_ms": corrected, "ranges_per_part": ranges_of,
        "nodes": [{"name": n, "op": o, "weight": w, "part": p} for n, o, w, p in sp.learned],
    }


def markdown(r):
    rows = ["| part | raw ms/token | corrected ms/token | share of the step without callback | ranges |",
            "|---|---:|---:|---:|---:|"]
    t = r["ms_per_token"]["without_callback"]
    for p in PARTS:
        raw, cor = r["parts_raw_ms"][p], r["parts_corrected_ms"][p]
        if raw == 0 and cor == 0:
            continue
        rows.append(f"| {p} | {raw:.3f} | {cor:.3f} | {100 * cor / t:.1f} % | {r['ranges_per_part'][p]} |")
    m = r["ms_per_token"]
    return (f"llama.cpp decode at depth 0, {r['threads']} threads, {os.path.basename(r['gguf'])}: "
            f"{m['without_callback']:.3f} ms/token without the callback, {m['with_callback']:.3f} with it "
            f"({r['ranges_per_token']:.0f} synchronised ranges a token, "
            f"{1e3 * r['overhead_ms_per_range']:.1f} µs each; {r['graph_nodes']} graph nodes; "
            f"{r['mismatched_asks']} asks off the learned graph)\n\n" + "\n".join(rows) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llamacpp", help="the install folder of scripts/peers/llamacpp.sh")
    ap.add_argument("--gguf", help="the GGUF model")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--tokens", type=int, default=pc.TG - 1, help="decode steps a round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds without and with the callback")
    ap.add_argument("--out", help="JSON to write (a .md beside it); refuses to overwrite without --force")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--classify", metavar="FILE", help="only print the parts of the nodes recorded in FILE "
                    "(a JSON list of {name, op, weight}, or a split's output)")
    a = ap.parse_args()
    if a.classify:
        data = json.load(open(a.classify))
        nodes = data["nodes"] if isinstance(data, dict) else data
        parts = merge_views([(n["name"], n["op"], n.get("weight", ""),
                              part_of(n["name"], n["op"], n.get("weight"))) for n in nodes])
        print(json.dumps([{"name": n, "op": o, "weight": w, "part": p} for n, o, w, p in parts], indent=1))
        return
    if not (a.llamacpp and a.gguf and a.out):
        sys.exit("llamacpp_split: --llamacpp, --gguf and --out are required")
    if os.path.exists(a.out) and not a.force:
        sys.exit(f"llamacpp_split: {a.out} exists; pass --force to overwrite it")
    r = run(a)
    with open(a.out, "w") as f:
        json.dump(r, f, indent=1)
    md = markdown(r)
    with open(os.path.splitext(a.out)[0] + ".md", "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
