#!/usr/bin/env python3
"""llama.cpp peer of mistral-rs-bench (issue 16): the specialised engine beside mistral.rs,
on the same GGUF file, shapes, threads and timing rules as the other peers.

Three parts, all written into one summary in the suite's schema (`peers/llamacpp/...`), so
`mistral-rs-bench peers-report` sets llama.cpp beside mistral.rs, candle and PyTorch:

- End to end, through llama.cpp's C API (the ctypes layer of llama-cpp-python, loaded from
  the library that scripts/peers/llamacpp.sh built): prefill 128/512 (prompt in, first token
  out: `llama_decode` of the prompt and the argmax of the last logits, read back to the
  host), decode 128 tokens at depth 0 and 512 (the prompt untimed; 127 timed steps of one
  token, each read back; their times are the inter-token latencies), and concurrency as one
  static batch (c sequences of 16 prompt tokens, then 15 steps of c tokens), as the PyTorch
  peer does. Greedy argmax, no sampler chain. One untimed warm-up run, 10 timed runs.
- llama-bench's own output (`-o json`): pp128, pp512, tg128 at depth 0 and 512, with the
  settings it ran with, so a reader can check the numbers against the tool they know.
- Components: test-backend-ops' MUL_MAT perf cases at Llama-3-8B's down-projection shape
  (m=4096, k=14336; n = 1 token is the suite's `quant_matmul/llama-3-8b/<fmt>/down/m1`;
  n = 512 stays in the tool's records, the suite has no such case), parsed from its console
  output. test-backend-ops runs the CPU backend on half the hardware threads (its own rule);
  each record says how many.

    python3 scripts/peers/llamacpp_peers.py --llamacpp target/llamacpp/cpu --preset smollm2-135m \\
        --gguf models/SmolLM2-135M-Instruct.Q4_1.gguf --out target/peers-cpu/peers-llamacpp-cpu.json
"""
import argparse
import importlib
import json
import os
import re
import subprocess
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_common as pc  # noqa: E402

ENGINE = "llamacpp"


def load_binding(install):
    """llama-cpp-python's ctypes layer (`llama_cpp.llama_cpp`) without its high-level package
    (whose __init__ needs jinja2 and diskcache): the package is entered as a bare module whose
    path is the copied sources, and the library comes from LLAMA_CPP_LIB_PATH."""
    os.environ["LLAMA_CPP_LIB_PATH"] = os.path.join(install, "lib")
    pkg = types.ModuleType("llama_cpp")
    pkg.__path__ = [os.path.join(install, "py")]
    sys.modules["llama_cpp"] = pkg
    return importlib.import_module("llama_cpp.llama_cpp")


# ggml's log levels (ggml.h): 1 debug, 2 info, 3 warn, 4 error, 5 continues the previous line
_LOG_WARN, _LOG_CONT = 3, 5


def quiet_logs(ll):
    """Keeps llama.cpp's warnings and errors on stderr and drops its info and debug lines
    (several hundred per model load). The callback is kept alive on the module."""
    import ctypes

    keep = [False]

    def cb(level, text, _user):
        if level != _LOG_CONT:
            keep[0] = level >= _LOG_WARN
        if keep[0] and text:
            sys.stderr.write(text.decode(errors="replace"))

    quiet_logs.cb = ll.llama_log_callback(cb)
    ll.llama_log_set(quiet_logs.cb, ctypes.c_void_p(0))


class Engine:
    """One model and one context of llama.cpp, driven token by token."""

    def __init__(self, ll, path, gpu, threads, n_ctx, n_seq, n_batch, cb_eval=None):
        self.ll = ll
        mp = ll.llama_model_default_params()
        mp.n_gpu_layers = 999 if gpu else 0
        t = time.perf_counter()
        self.model = ll.llama_model_load_from_file(path.encode(), mp)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        cp = ll.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = n_ctx, n_batch, n_batch, n_seq
        cp.n_threads = cp.n_threads_batch = threads
        cp.kv_unified = True  # every sequence may use the whole context
        cp.no_perf = True
        if cb_eval is not None:  # ggml's scheduler callback (scripts/peers/llamacpp_split.py)
            cp.cb_eval = cb_eval
        self.ctx = ll.llama_init_from_model(self.model, cp)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not make a context")
        self.load_s = time.perf_counter() - t
        self.params = cp
        self.vocab = ll.llama_vocab_n_tokens(ll.llama_model_get_vocab(self.model))
        self.batch = ll.llama_batch_init(n_batch, 0, n_seq)
        self.n_batch = n_batch

    def close(self):
        self.ll.llama_batch_free(self.batch)
        self.ll.llama_free(self.ctx)
        self.ll.llama_model_free(self.model)

    def clear(self):
        self.ll.llama_memory_clear(self.ll.llama_get_memory(self.ctx), True)

    def _decode(self, toks):
        """toks: (token, pos, seq, wants_logits) tuples, at most n_batch of them."""
        b = self.batch
        for i, (tok, pos, seq, out) in enumerate(toks):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = tok, pos, 1, out
            b.seq_id[i][0] = seq
        b.n_tokens = len(toks)
        rc = self.ll.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def argmax(self, i):
        """The greedy next token from output row i (reading the logits waits for the device)."""
        import numpy as np

        ptr = self.ll.llama_get_logits_ith(self.ctx, i)
        return int(np.ctypeslib.as_array(ptr, shape=(self.vocab,)).argmax())

    def prefill(self, prompts):
        """Each prompt as its own sequence; returns the first token of each."""
        toks = []
        for s, ids in enumerate(prompts):
            toks += [(t, p, s, p == len(ids) - 1) for p, t in enumerate(ids)]
        first = []
        for at in range(0, len(toks), self.n_batch):
            chunk = toks[at:at + self.n_batch]
            self._decode(chunk)
            first += [self.argmax(j) for j, c in enumerate(chunk) if c[3]]
        return first

    def steps(self, nxt, start_pos, n, itl=None):
        """n decode steps of len(nxt) sequences from positions start_pos."""
        pos = list(start_pos)
        for _ in range(n):
            t = time.perf_counter()
            self._decode([(tok, pos[s], s, True) for s, tok in enumerate(nxt)])
            nxt = [self.argmax(s) for s in range(len(nxt))]
            pos = [x + 1 for x in pos]
            if itl is not None:
                itl.append((time.perf_counter() - t) * 1e3)
        return nxt


def e2e_cases(e, label, p, gpu):
    """(id, tokens, fn returning seconds of the timed part, itl list or None) per case."""
    vocab = e.vocab
    lo = min(pc.FIRST_WORD, vocab - 1)
    cases = []
    for n in pc.PP:
        ids = pc.prompt_ids(n, lo, vocab, 7)

        def f(ids=ids):
            e.clear()
            t = time.perf_counter()
            e.prefill([ids])
            return time.perf_counter() - t

        cases.append((f"{label}/prefill/pp{n}", n, f, None))
    for d in pc.depths(gpu):
        if max(d, 1) + pc.TG > min(p["max_context"], e.params.n_ctx):
            continue
        ids = pc.prompt_ids(max(d, 1), lo, vocab, 8)
        itl = []

        def f(ids=ids, itl=itl):
            e.clear()
            nxt = e.prefill([ids])  # untimed
            t = time.perf_counter()
            e.steps(nxt, [len(ids)], pc.TG - 1, itl)
            return time.perf_counter() - t

        cases.append((f"{label}/decode/tg{pc.TG}/depth{d}", pc.TG - 1, f, itl))
    cp, cg = pc.conc_lengths(gpu)
    for c in pc.concurrency(gpu):
        if c > e.params.n_seq_max:
            continue
        prompts = [pc.prompt_ids(cp, lo, vocab, 100 + r) for r in range(c)]

        def f(prompts=prompts):
            e.clear()
            t = time.perf_counter()
            nxt = e.prefill(prompts)
            e.steps(nxt, [cp] * len(prompts), cg - 1)
            return time.perf_counter() - t

        cases.append((f"{label}/concurrent/c{c}", c * cg, f, None))
    return cases


def gguf_dtype(path):
    """The weight type of most of a GGUF file's tensors (what llama.cpp computes with)."""
    try:
        import gguf  # noqa: F401 (optional: only for the label)

        r = gguf.GGUFReader(path)
        counts = {}
        for t in r.tensors:
            counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + t.n_elements
        return max(counts, key=counts.get)
    except Exception:
        m = re.search(r"\.(Q\d\w*|F16|BF16|F32)\.gguf$", path, re.I)
        return m.group(1).upper() if m else "gguf"


def llama_bench(install, path, threads, gpu, reps, depths):
    """llama-bench's own records (`-o json`), and the command it ran."""
    cmd = [os.path.join(install, "bin", "llama-bench"), "-m", path, "-p", "128,512", "-n", "128",
           "-d", ",".join(str(d) for d in depths), "-t", str(threads), "-r", str(reps),
           "-ngl", "99" if gpu else "0", "-o", "json"]
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(install, "lib"))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"llama-bench exited {r.returncode}: {r.stderr[-2000:]}")
    return {"tool": "llama-bench", "command": " ".join(cmd), "records": json.loads(r.stdout)}


# test-backend-ops console lines: `  MUL_MAT(type_a=q4_0,type_b=f32,m=4096,n=1,k=14336,...):
#   2130 runs -   470.21 us/run - 117.44 MFLOP/run - 249.75 GFLOPS`
PERF_LINE = re.compile(r"^\s*(MUL_MAT)\((?P<params>[^)]*)\):\s+(?P<runs>\d+) runs -\s+(?P<us>[\d.]+) us/run")
FORMATS = {"q4_0": "q4/Q4_0", "q4_1": "q4/Q4_1", "q4_K": "q4/Q4K", "q8_0": "q8/Q8_0", "f16": "float/f16", "bf16": "float/bf16",
           "f32": "float/f32"}


def parse_backend_ops(text):
    """The MUL_MAT perf lines of test-backend-ops' console output: dicts of type_a, m, n, k,
    runs, us_per_run (other parameters kept as strings)."""
    out = []
    for line in text.splitlines():
        m = PERF_LINE.match(line)
        if not m:
            continue
        params = dict(kv.split("=", 1) for kv in re.findall(r"(\w+=(?:\[[^\]]*\]|[^,]*))", m["params"]))
        rec = {"op": m[1], "params": m["params"], "runs": int(m["runs"]), "us_per_run": float(m["us"])}
        for k in ("m", "n", "k"):
            if k in params:
                rec[k] = int(params[k])
        rec["type_a"], rec["type_b"] = params.get("type_a"), params.get("type_b")
        rec["bs"], rec["nr"] = params.get("bs"), params.get("nr")
        out.append(rec)
    return out


def backend_ops(install, gpu, types_):
    """test-backend-ops' MUL_MAT perf at m=4096, k=14336, n in {1, 512}, for types_."""
    regex = "type_a=(" + "|".join(types_) + r"),type_b=f32,m=4096,n=(1|512),k=14336,bs=\[1,1\],nr=\[1,1\]"
    cmd = [os.path.join(install, "bin", "test-backend-ops"), "perf", "-o", "MUL_MAT", "-b",
           "CUDA0" if gpu else "CPU", "-p", regex]
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(install, "lib"))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"test-backend-ops exited {r.returncode}: {(r.stdout + r.stderr)[-2000:]}")
    return " ".join(cmd), parse_backend_ops(r.stdout)


def component_records(recs, dev, dev_name, threads):
    """Suite records `peers/llamacpp/llama-3-8b/quant_matmul/<fmt>/down/m<n>` (Llama-3-8B's
    down projection: 14336 -> 4096) from parsed test-backend-ops lines."""
    p = {"name": "llama-3-8b"}
    out = []
    for r in recs:
        fmt = FORMATS.get(r["type_a"])
        if fmt is None or (r["m"], r["k"]) != (4096, 14336) or r["type_b"] != "f32":
            continue
        n = r["n"]
        if n != 1:  # the suite has the one-token shape; the rest stay in the tool's records
            continue
        flops = 2 * r["m"] * r["k"] * n
        case = f"llama-3-8b/quant_matmul/{fmt}/down/m{n}"
        # one figure per case: the tool's mean over its runs (it reports no spread)
        out.append(pc.case_record(ENGINE, case, p, dev, dev_name, r["type_a"], f"W=[{r['m']},{r['k']}] x=[{n},{r['k']}]",
                                  flops, 0, None, [r["us_per_run"] * 1e3],
                                  {"engine": "llama.cpp test-backend-ops perf", "runs": r["runs"],
                                   "statistic": "mean of the tool's runs (no spread reported)",
                                   "threads": threads, "params": r["params"]}))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llamacpp", help="the install folder of scripts/peers/llamacpp.sh")
    ap.add_argument("--parse-backend-ops", metavar="FILE", help="only parse FILE (test-backend-ops perf console "
                    "output) and print its MUL_MAT records and the suite's cases from them, as JSON")
    ap.add_argument("--preset", default="smollm2-135m")
    ap.add_argument("--models-toml", default=os.path.join(os.path.dirname(__file__), "..", "..", "models.toml"))
    ap.add_argument("--device", default="cpu", help="cpu | cuda")
    ap.add_argument("--gguf", action="append", default=[], help="a GGUF file to run end to end (repeatable; "
                    "default: the preset's models.toml source when it is a GGUF file that exists)")
    ap.add_argument("--synth-gguf", help="the preset's synthetic model as GGUF (scripts/peers/synth_gguf.py), "
                    "run under the suite's name for it, <preset>-synthetic-<dtype>")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="llama.cpp threads (default: all cores, "
                    "as many as the suite's rayon pool)")
    ap.add_argument("--bench-reps", type=int, default=5, help="llama-bench repetitions (-r)")
    ap.add_argument("--no-llama-bench", action="store_true")
    ap.add_argument("--no-components", action="store_true")
    ap.add_argument("--no-memory", action="store_true", help="no memory sampler thread during the cases")
    ap.add_argument("--filter", default="", help="run only end-to-end cases whose id contains this")
    ap.add_argument("--profile", default=os.environ.get("MISTRALRS_BENCH_PROFILE", "default"), choices=list(pc.PROFILES))
    ap.add_argument("--out", help="summary JSON to write (refuses to overwrite without --force)")
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()

    if a.parse_backend_ops:
        recs = parse_backend_ops(open(a.parse_backend_ops).read())
        cases = component_records(recs, "cpu", "parsed", None)
        print(json.dumps({"records": recs, "cases": cases}, indent=1))
        return
    if not a.llamacpp or not a.out:
        sys.exit("llamacpp_peers: --llamacpp and --out are required")
    if os.path.exists(a.out) and not a.force:
        sys.exit(f"llamacpp_peers: {a.out} exists; pass --force to overwrite it")
    build_json = os.path.join(a.llamacpp, "build.json")
    if not os.path.isfile(build_json):
        sys.exit(f"llamacpp_peers: {build_json} missing: run scripts/peers/llamacpp.sh first")
    build = json.load(open(build_json))
    p = pc.load_preset(a.models_toml, a.preset, "llamacpp_peers")
    if not a.gguf and pc.preset_gguf(p, a.models_toml):
        a.gguf = [pc.preset_gguf(p, a.models_toml)]
    models = [(os.path.splitext(os.path.basename(g))[0], g) for g in a.gguf]
    if a.synth_gguf:
        models.insert(0, (f"{a.preset}-synthetic-{p['dtype']}", a.synth_gguf))
    for _, g in models:
        if not os.path.isfile(g):
            sys.exit(f"llamacpp_peers: {g}: no such file")
    gpu = a.device != "cpu"
    dev = "cpu" if not gpu else "cuda0"
    dev_name = pc.cpu_name()
    if gpu:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", "0"],
                           capture_output=True, text=True)
        dev_name = q.stdout.strip() or "cuda"
    ll = load_binding(a.llamacpp)
    ll.llama_backend_init()
    quiet_logs(ll)
    print(f"llamacpp_peers: llama.cpp {build['llama_cpp_commit']} on {dev_name}, {a.threads} threads",
          file=sys.stderr)
    cases, tools = [], []
    n_seq = max(pc.concurrency(gpu))
    n_ctx = min(p["max_context"], (max(pc.depths(gpu)) + pc.TG + 255) // 256 * 256)
    for label, path in models:
        dtype = gguf_dtype(path)
        before = pc.rss_bytes()
        try:
            e = Engine(ll, path, gpu, a.threads, n_ctx, n_seq, 512)
        except Exception as ex:
            cases.append(pc.failed_record(ENGINE, f"{label}/load", p, dev, dev_name, repr(ex)))
            continue
        fa = ll.llama_flash_attn_type_name(e.params.flash_attn_type)
        settings = {"n_ctx": e.params.n_ctx, "n_batch": e.params.n_batch, "n_ubatch": e.params.n_ubatch,
                    "n_seq_max": e.params.n_seq_max, "threads": a.threads, "kv_unified": True,
                    "flash_attn": fa.decode() if fa else e.params.flash_attn_type,
                    "type_k": e.params.type_k, "type_v": e.params.type_v}
        for cid, tokens, fn, itl in e2e_cases(e, label, p, gpu):
            if a.filter not in f"peers/{ENGINE}/{cid}":
                continue
            try:
                mem = None if gpu or a.no_memory else pc.PeakMem(pc.rss_bytes, "process resident set (RSS)", before)
                fn()  # warm-up, untimed
                secs = [fn() for _ in range(pc.E2E_SAMPLES)]
                extra = {"engine": f"llama.cpp {build['llama_cpp_commit']} (C API via ctypes)",
                         "model": path, "engine_dtype": f"{dtype} (GGUF, KV f16)", "load_s": e.load_s,
                         "memory": mem.report() if mem else None, "itl_ms": None, "threads": a.threads,
                         "settings": settings}
                if itl:
                    extra["itl_ms"] = pc.itl_stats(itl[-pc.E2E_SAMPLES * (pc.TG - 1):])
                fl = 2 * pc.n_params(p) * tokens
                cases.append(pc.case_record(ENGINE, cid, p, dev, dev_name, dtype,
                                            f"{p['layers']} layers, hidden {p['hidden']}, vocab {p['vocab']}",
                                            fl, 0, tokens, [s * 1e9 for s in secs], extra))
                med = sorted(secs)[len(secs) // 2]
                print(f"  {cid}: {med * 1e3:.1f} ms, {tokens / med:.1f} tok/s", file=sys.stderr)
            except Exception as ex:
                cases.append(pc.failed_record(ENGINE, cid, p, dev, dev_name, repr(ex)))
                print(f"  FAILED {cid}: {ex!r}", file=sys.stderr)
        e.close()
        if not a.no_llama_bench:
            try:
                tools.append(llama_bench(a.llamacpp, path, a.threads, gpu, a.bench_reps,
                                         [d for d in pc.depths(gpu) if d + 512 <= p["max_context"]]))
                print(f"  llama-bench: {len(tools[-1]['records'])} records", file=sys.stderr)
            except Exception as ex:
                print(f"  FAILED llama-bench: {ex!r}", file=sys.stderr)
    if not a.no_components:
        try:
            cmd, recs = backend_ops(a.llamacpp, gpu, ["q4_0", "q4_1", "q4_K", "q8_0", "f16", "f32"])
            # test-backend-ops' CPU backend runs on half the hardware threads (its own rule)
            threads = None if gpu else max(1, (os.cpu_count() or 2) // 2)
            cases += component_records(recs, dev, dev_name, threads)
            tools.append({"tool": "test-backend-ops", "command": cmd, "records": recs})
            print(f"  test-backend-ops: {len(recs)} MUL_MAT cases", file=sys.stderr)
        except Exception as ex:
            print(f"  FAILED test-backend-ops: {ex!r}", file=sys.stderr)
    summary = {
        "device": dev,
        "device_name": dev_name,
        "profile": {"name": a.profile, "e2e_samples": pc.E2E_SAMPLES},
        "mistralrs_version": f"n/a (llama.cpp peer: llama.cpp {build['llama_cpp_commit']}, {build['source']})",
        "written_at": pc.now(),
        "ceilings": None,
        "llc_bytes": None,
        "cases": cases,
        "derived": {},
        "peer_build": build,
        "tool_runs": tools,
    }
    pc.write_summary(a.out, summary)
    bad = [c["case"] for c in cases if c["status"] != "ok"]
    print(f"llamacpp_peers: {len(cases) - len(bad)} cases ok, {len(bad)} failed -> {a.out}", file=sys.stderr)
    sys.exit(1 if not cases or len(bad) == len(cases) else 0)


if __name__ == "__main__":
    main()
