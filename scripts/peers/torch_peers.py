#!/usr/bin/env python3
"""PyTorch-eager peer of mistral-rs-bench (issue 6).

Runs the same cases as the suite's `peers/candle/...` ids, on the same preset shapes (read
from models.toml) and the same models (the synthetic safetensors directory the engine loads,
and the SmolLM2 GGUF, which transformers dequantizes), and writes them in the suite's
summary schema as `peers/torch/...`, so `mistral-rs-bench peers-report` sets them beside
mistral.rs and candle.

Timing: every sample synchronises the device before reading the clock (CUDA: events on the
current stream around the sample, plus a synchronize); warm-up iterations are not timed;
medians with a bootstrap 95 % interval; nanoseconds per iteration like Criterion.

    python3 scripts/peers/torch_peers.py --preset smollm2-135m --device cpu \
        --synth-dir target/mistral-rs-bench/models/smollm2-135m-bf16 \
        --gguf models/SmolLM2-135M-Instruct.Q4_1.gguf --out target/mistral-rs-bench/peers-torch-cpu.json
"""
import argparse
import os
import sys
import time

# Everything is local: never reach for a hub; no progress bars in the logs.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_common import (  # noqa: E402
    ATTN_DECODE, ATTN_PREFILL, E2E_SAMPLES, FFN_TOKENS, FIRST_WORD, PP, PROFILES, TG, PeakMem,
    cpu_name, n_params, now, prompt_ids, rss_bytes, write_summary,
)
import peer_common  # noqa: E402


def depths(dev):
    return peer_common.depths(dev.type != "cpu")


def concurrency(dev):
    return peer_common.concurrency(dev.type != "cpu")


def conc_lengths(dev):
    return peer_common.conc_lengths(dev.type != "cpu")


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


# ----------------------------------------------------------------------------------------
# Memory


def mem_in_use(dev):
    if dev.type == "cuda":
        free, total = torch.cuda.mem_get_info(dev)
        return total - free
    return rss_bytes()


def peak_mem(dev, before_load=None):
    kind = "whole device in use (total - free)" if dev.type == "cuda" else "process resident set (RSS)"
    return PeakMem(lambda: mem_in_use(dev), kind, before_load)


# ----------------------------------------------------------------------------------------
# Timing (the statistics are peer_common.estimates)


def time_op(fn, dev, warm_s, meas_s, samples):
    """Criterion-like: warm up for `warm_s`, pick iterations per sample so that `samples`
    samples fill `meas_s`, time each sample (synchronised), return ns per iteration."""
    t0 = time.perf_counter()
    n = 0
    while True:
        fn()
        n += 1
        sync(dev)
        if time.perf_counter() - t0 >= warm_s:
            break
    per = (time.perf_counter() - t0) / n
    iters = max(1, int(meas_s / samples / per))
    out = []
    for _ in range(samples):
        if dev.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            sync(dev)
            a.record()
            for _ in range(iters):
                fn()
            b.record()
            b.synchronize()
            out.append(a.elapsed_time(b) * 1e6 / iters)
        else:
            t = time.perf_counter()
            for _ in range(iters):
                fn()
            out.append((time.perf_counter() - t) * 1e9 / iters)
    return out


# ----------------------------------------------------------------------------------------
# Components (the shapes of src/parts/peers.rs)


def seeded(shape, std, seed, dtype, dev):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * std).to(dtype).to(dev)


def components(p, dev, dtype):
    h, i, v = p["hidden"], p["intermediate"], p["vocab"]
    H, KV, D = p["heads"], p["kv_heads"], p["head_dim"]
    e = torch.finfo(dtype).bits // 8
    name = p["name"]
    out = []

    for phase, q_len, kv_len in [("decode", 1, ATTN_DECODE), ("prefill", ATTN_PREFILL, ATTN_PREFILL)]:
        if kv_len > p["max_context"]:
            continue
        q = seeded((1, H, q_len, D), 1.0, 1, dtype, dev)
        k = seeded((1, KV, kv_len, D), 1.0, 2, dtype, dev)
        vv = seeded((1, KV, kv_len, D), 1.0, 3, dtype, dev)
        causal = q_len > 1

        def attn(q=q, k=k, vv=vv, causal=causal):
            return F.scaled_dot_product_attention(q, k, vv, is_causal=causal, enable_gqa=True)

        cost = (4 * H * q_len * kv_len * D, (2 * H * q_len * D + 2 * KV * kv_len * D) * e)
        out.append((f"{name}/attention/{phase}/ctx{kv_len}", attn, cost,
                    f"q=[1,{H},{q_len},{D}] kv=[1,{KV},{kv_len},{D}]"))

    gate = torch.nn.Linear(h, i, bias=False).to(dev, dtype)
    up = torch.nn.Linear(h, i, bias=False).to(dev, dtype)
    down = torch.nn.Linear(i, h, bias=False).to(dev, dtype)
    for t in FFN_TOKENS:
        x = seeded((1, t, h), 1.0, 14, dtype, dev)

        def ffn(x=x):
            return down(F.silu(gate(x)) * up(x))

        phase = "decode" if t == 1 else "prefill"
        cost = (6 * t * h * i, 3 * h * i * e + (2 * t * h + 3 * t * i) * e)
        out.append((f"{name}/ffn/{phase}/t{t}", ffn, cost, f"x=[1,{t},{h}] h={h} i={i}"))

    w = seeded((h,), 0.1, 21, dtype, dev) + 1
    x1 = seeded((1, 1, h), 1.0, 22, dtype, dev)
    eps = p.get("rms_eps", 1e-5)
    out.append((f"{name}/rmsnorm/t1", lambda: F.rms_norm(x1, (h,), w, eps), (4 * h, 3 * h * e), f"x=[1,1,{h}]"))
    lm = torch.nn.Linear(h, v, bias=False).to(dev, dtype)
    out.append((f"{name}/lm_head/t1", lambda: lm(x1), (2 * v * h, v * h * e + (h + v) * e), f"x=[1,1,{h}] W=[{v},{h}]"))
    return out


# ----------------------------------------------------------------------------------------
# End to end (transformers, eager attention path chosen by transformers' defaults)


class E2E:
    def __init__(self, model, vocab, dev):
        self.m, self.vocab, self.dev = model, vocab, dev

    @torch.inference_mode()
    def prefill(self, ids):
        out = self.m(input_ids=ids, use_cache=True)
        nxt = out.logits[:, -1].argmax(-1)
        return out.past_key_values, nxt.tolist()  # .tolist() reads back to the host

    @torch.inference_mode()
    def steps(self, pkv, nxt, n, itl=None):
        for _ in range(n):
            t = time.perf_counter()
            ids = torch.tensor(nxt, device=self.dev).unsqueeze(1)
            out = self.m(input_ids=ids, past_key_values=pkv, use_cache=True)
            pkv = out.past_key_values
            nxt = out.logits[:, -1].argmax(-1).tolist()
            if itl is not None:
                itl.append((time.perf_counter() - t) * 1e3)
        return nxt


def load_model(path, gguf, dtype, dev):
    from transformers import AutoModelForCausalLM

    t = time.perf_counter()
    kw = {"dtype": dtype}
    if gguf:
        m = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path), **kw)
    else:
        m = AutoModelForCausalLM.from_pretrained(path, **kw)
    m = m.to(dev).eval()
    sync(dev)
    return m, time.perf_counter() - t


def e2e_cases(p, dev, label, e2e, samples):
    """(id, tokens, fn returning seconds of the timed part, extra) per case."""
    vocab = e2e.vocab
    lo = min(FIRST_WORD, vocab - 1)
    cases = []
    for n in PP:
        ids = torch.tensor([prompt_ids(n, lo, vocab, 7)], device=dev)

        def f(ids=ids):
            sync(dev)
            t = time.perf_counter()
            e2e.prefill(ids)
            return time.perf_counter() - t

        cases.append((f"{label}/prefill/pp{n}", n, f, None))
    for d in depths(dev):
        if max(d, 1) + TG > p["max_context"]:
            continue
        ids = torch.tensor([prompt_ids(max(d, 1), lo, vocab, 8)], device=dev)
        itl = []

        def f(ids=ids, itl=itl):
            pkv, nxt = e2e.prefill(ids)  # untimed
            sync(dev)
            t = time.perf_counter()
            e2e.steps(pkv, nxt, TG - 1, itl)
            return time.perf_counter() - t

        cases.append((f"{label}/decode/tg{TG}/depth{d}", TG - 1, f, itl))
    cp, cg = conc_lengths(dev)
    for c in concurrency(dev):
        ids = torch.tensor([prompt_ids(cp, lo, vocab, 100 + r) for r in range(c)], device=dev)

        def f(ids=ids):
            sync(dev)
            t = time.perf_counter()
            pkv, nxt = e2e.prefill(ids)
            e2e.steps(pkv, nxt, cg - 1)
            return time.perf_counter() - t

        cases.append((f"{label}/concurrent/c{c}", c * cg, f, None))
    return cases


# ----------------------------------------------------------------------------------------


def device_name(dev):
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return cpu_name()


def case_record(case, p, dev, dev_name, dtype_name, shape, flops, nbytes, tokens, per_iter_ns, extra):
    # the intra-op threads it ran with (equal work: the suite's rayon pool has as many)
    extra = {**(extra or {}), "threads": torch.get_num_threads()}
    return peer_common.case_record("torch", case, p, dev_label(dev), dev_name, dtype_name, shape, flops,
                                   nbytes, tokens, per_iter_ns, extra)


def failed_record(case, p, dev, dev_name, why):
    return peer_common.failed_record("torch", case, p, dev_label(dev), dev_name, why)


def dev_label(dev):
    return "cpu" if dev.type == "cpu" else f"cuda{dev.index or 0}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="smollm2-135m")
    ap.add_argument("--models-toml", default=os.path.join(os.path.dirname(__file__), "..", "..", "models.toml"))
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--dtype", help="f32 | bf16 | f16 (default: f32 on CPU, the preset's dtype on GPU)")
    ap.add_argument("--synth-dir", help="the preset's synthetic model (mistral-rs-bench synth PRESET)")
    ap.add_argument("--gguf", help="a GGUF file of the preset's real model, dequantized by transformers "
                    "(default: the preset's models.toml source when it is a GGUF file that exists)")
    ap.add_argument("--no-real", action="store_true", help="skip the preset's real model")
    ap.add_argument("--filter", default="", help="run only cases whose id contains this")
    ap.add_argument("--profile", default=os.environ.get("MISTRALRS_BENCH_PROFILE", "default"), choices=["quick", "default", "full"])
    ap.add_argument("--out", required=True, help="summary JSON to write (refuses to overwrite without --force)")
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()

    if os.path.exists(a.out) and not a.force:
        sys.exit(f"torch_peers: {a.out} exists; pass --force to overwrite it")
    p = peer_common.load_preset(a.models_toml, a.preset, "torch_peers")
    if a.gguf is None and not a.no_real:
        a.gguf = peer_common.preset_gguf(p, a.models_toml)
    if a.no_real:
        a.gguf = None
    dev = torch.device(a.device)
    dnames = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}
    dname = a.dtype or ("f32" if dev.type == "cpu" else p["dtype"])
    if dname not in dnames:
        sys.exit(f"torch_peers: bad dtype {dname!r}")
    dtype = dnames[dname]
    warm, meas, samples = PROFILES[a.profile]
    torch.manual_seed(0)
    dev_name = device_name(dev)
    print(f"torch_peers: torch {torch.__version__} on {dev_name}, {dname}, profile {a.profile}", file=sys.stderr)
    cases = []

    with torch.inference_mode():
        for cid, fn, (fl, nb), shape in components(p, dev, dtype):
            if a.filter not in f"peers/torch/{cid}":
                continue
            try:
                ns = time_op(fn, dev, warm, meas, samples)
                cases.append(case_record(cid, p, dev, dev_name, dname, shape, fl, nb, None, ns, {"engine": f"torch {torch.__version__} eager"}))
                print(f"  {cid}: {np.median(ns) / 1e3:.1f} us", file=sys.stderr)
            except Exception as e:  # a case that fails is recorded, the run goes on
                cases.append(failed_record(cid, p, dev, dev_name, repr(e)))
                print(f"  FAILED {cid}: {e!r}", file=sys.stderr)

    from transformers import __version__ as tf_version

    models = []
    if a.synth_dir:
        models.append((f"{a.preset}-synthetic-{p['dtype']}", a.synth_dir, False, dtype))
    if a.gguf:
        # transformers dequantizes GGUF weights to float: torch has no Q4_1 kernels.
        models.append((os.path.splitext(os.path.basename(a.gguf))[0], a.gguf, True, dtype))
    for label, path, is_gguf, mdt in models:
        ids = [f"{label}/prefill/pp{n}" for n in PP] + [f"{label}/decode/tg{TG}/depth{d}" for d in depths(dev)]
        ids += [f"{label}/concurrent/c{c}" for c in concurrency(dev)]
        if not any(a.filter in f"peers/torch/{i}" for i in ids):
            continue
        before_load = mem_in_use(dev)
        try:
            m, load_s = load_model(path, is_gguf, mdt, dev)
        except Exception as e:
            cases.append(failed_record(f"{label}/load", p, dev, dev_name, repr(e)))
            print(f"  FAILED loading {label}: {e!r}", file=sys.stderr)
            continue
        e2e = E2E(m, m.config.vocab_size, dev)
        nb = sum(t.numel() * t.element_size() for t in m.parameters())
        for cid, tokens, fn, itl in e2e_cases(p, dev, label, e2e, samples):
            if a.filter not in f"peers/torch/{cid}":
                continue
            try:
                mem = peak_mem(dev, before_load)
                fn()  # warm-up, untimed
                secs = [fn() for _ in range(E2E_SAMPLES)]
                extra = {
                    "engine": f"torch {torch.__version__} + transformers {tf_version} eager",
                    "model": path,
                    "engine_dtype": dname + (" (GGUF dequantized)" if is_gguf else ""),
                    "load_s": load_s,
                    "memory": mem.report(),
                    "itl_ms": None,
                }
                if itl:
                    extra["itl_ms"] = peer_common.itl_stats(itl[-E2E_SAMPLES * (TG - 1):])
                fl = 2 * n_params(p) * tokens
                per_tok_bytes = nb * (tokens if "decode" in cid else 1)
                cases.append(case_record(cid, p, dev, dev_name, dname, f"{p['layers']} layers, hidden {p['hidden']}, vocab {p['vocab']}",
                                         fl, per_tok_bytes, tokens, [s * 1e9 for s in secs], extra))
                print(f"  {cid}: {np.median(secs) * 1e3:.1f} ms, {tokens / np.median(secs):.1f} tok/s", file=sys.stderr)
            except Exception as e:
                cases.append(failed_record(cid, p, dev, dev_name, repr(e)))
                print(f"  FAILED {cid}: {e!r}", file=sys.stderr)
        del m, e2e
        if dev.type == "cuda":
            torch.cuda.empty_cache()

    summary = {
        "device": dev_label(dev),
        "device_name": dev_name,
        "profile": {"name": a.profile, "warm_up_s": warm, "measurement_s": meas, "samples": samples, "e2e_samples": E2E_SAMPLES},
        "mistralrs_version": f"n/a (PyTorch peer: torch {torch.__version__}, transformers {tf_version})",
        "written_at": now(),
        "ceilings": None,
        "llc_bytes": None,
        "cases": cases,
        "derived": {},
    }
    write_summary(a.out, summary)
    bad = [c["case"] for c in cases if c["status"] != "ok"]
    print(f"torch_peers: {len(cases) - len(bad)} cases ok, {len(bad)} failed -> {a.out}", file=sys.stderr)
    sys.exit(1 if bad and len(bad) == len(cases) else 0)


if __name__ == "__main__":
    main()
