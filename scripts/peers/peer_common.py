"""What the Python peers (PyTorch, llama.cpp) share: the workload lengths of the suite's own
cases, the statistics in Criterion's vocabulary, peak-memory sampling and the summary records
(the schema of `mistral-rs-bench`'s summary-<device>.json). No framework is imported here."""
import datetime
import os
import platform
import threading
import time

# numpy is imported where it is used, so that the parsers here and in llamacpp_peers.py run
# on a bare python3 (the suite's tests call them).

# Same lengths as src/parts/generation.rs and src/parts/peers.rs.
PP = [128, 512]
TG = 128
FIRST_WORD = 3
ATTN_DECODE, ATTN_PREFILL = 2048, 512
FFN_TOKENS = [1, 512]
# End-to-end cases: one untimed warm-up run, then this many timed runs.
E2E_SAMPLES = 10
PROFILES = {"quick": (0.3, 1.0, 10), "default": (1.0, 3.0, 20), "full": (3.0, 5.0, 100)}


def depths(gpu):
    return [0, 4096, 16384] if gpu else [0, 512]


def concurrency(gpu):
    return [1, 8, 32] if gpu else [1, 4, 16]


def conc_lengths(gpu):
    """(prompt tokens, generated tokens) of each concurrent request."""
    return (64, 32) if gpu else (16, 16)


def prompt_ids(n, lo, vocab, seed):
    # Not the Rust StdRng stream: same length and id range, which is what costs time.
    import numpy as np

    g = np.random.default_rng(seed)
    return g.integers(lo, vocab, size=n).tolist()


def estimates(per_iter_ns, seed=0):
    import numpy as np

    x = np.asarray(per_iter_ns, dtype=np.float64)
    med = float(np.median(x))
    rng = np.random.default_rng(seed)
    boots = np.median(rng.choice(x, size=(2000, len(x)), replace=True), axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {
        "median_ns": med,
        "median_lo_ns": float(lo),
        "median_hi_ns": float(hi),
        "mad_ns": float(np.median(np.abs(x - med)) * 1.4826),
        "mean_ns": float(np.mean(x)),
        "std_dev_ns": float(np.std(x, ddof=1)) if len(x) > 1 else 0.0,
    }


def itl_stats(itl_ms):
    """Inter-token latency percentiles (ms) of the timed runs' decode steps."""
    import numpy as np

    s = np.asarray(itl_ms)
    out = {k: float(np.percentile(s, q)) for k, q in (("p50", 50), ("p90", 90), ("p99", 99))}
    out["mean"] = float(s.mean())
    return out


def load_preset(models_toml, name, tool):
    """The preset `name` of models.toml (a dict with its `name`), or exit naming `tool`."""
    import sys
    import tomllib

    with open(models_toml, "rb") as f:
        presets = tomllib.load(f)["presets"]
    if name not in presets:
        sys.exit(f"{tool}: no preset {name!r} in {models_toml} (have {', '.join(presets)})")
    return dict(presets[name], name=name)


def preset_gguf(p, models_toml):
    """The preset's real model when its models.toml source is a GGUF file that exists."""
    src = p.get("source", {})
    if src.get("kind") != "gguf":
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(models_toml)), src["path"])
    return path if os.path.isfile(path) else None


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMem:
    """Peak memory in use while a case runs, sampled every 2 ms on a thread, as the Rust
    suite's `device::PeakMem` does. `in_use` reads the current figure (bytes); `kind` says
    what it is."""

    def __init__(self, in_use, kind, before_load=None):
        self.in_use, self.kind, self.before_load = in_use, kind, before_load
        self.start = in_use()
        self.peak, self.stop = self.start, False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop:
            self.peak = max(self.peak, self.in_use())
            time.sleep(0.002)

    def report(self):
        self.stop = True
        self.t.join()
        mib = lambda b: round(b / 2**20, 1)
        out = {"kind": self.kind, "start_mib": mib(self.start), "peak_mib": mib(self.peak),
               "before_load_mib": None, "footprint_mib": None}
        if self.before_load is not None:
            out["before_load_mib"] = mib(self.before_load)
            out["footprint_mib"] = mib(max(0, self.peak - self.before_load))
        return out


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or "cpu"


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def n_params(p):
    h, i, L, v = p["hidden"], p["intermediate"], p["layers"], p["vocab"]
    attn = h * p["heads"] * p["head_dim"] * 2 + h * p["kv_heads"] * p["head_dim"] * 2
    return L * (attn + 3 * h * i) + v * h


def single_estimate(ns):
    """The estimates of a figure a tool reported alone (no samples, so no spread)."""
    return {"median_ns": ns, "median_lo_ns": ns, "median_hi_ns": ns, "mad_ns": 0.0, "mean_ns": ns,
            "std_dev_ns": 0.0}


def case_record(engine, case, p, device, dev_name, dtype_name, shape, flops, nbytes, tokens, per_iter_ns, extra):
    """One ok case of engine `engine` (`torch`, `llamacpp`): `peers/<engine>/<case>`. One
    figure alone (a tool's own mean) is recorded as it is, with no spread."""
    est = single_estimate(per_iter_ns[0]) if len(per_iter_ns) == 1 else estimates(per_iter_ns)
    med_s = est["median_ns"] / 1e9
    return {
        "case": f"peers/{engine}/{case}",
        "group": "peers",
        "preset": p["name"],
        "device": device,
        "device_name": dev_name,
        "dtype": dtype_name,
        "shape": shape,
        "status": "ok",
        "reason": None,
        "flops": int(flops),
        "bytes": int(nbytes),
        "tokens": tokens,
        "estimates": est,
        "tokens_per_s": tokens / med_s if tokens else None,
        "gbps": nbytes / med_s / 1e9 if nbytes else None,
        "gflops": flops / med_s / 1e9 if flops else None,
        "pct_bw_ceiling": None,
        "pct_flop_ceiling": None,
        "fits_in_cache": None,
        "measured_at": now(),
        "extra": extra or {},
    }


def failed_record(engine, case, p, device, dev_name, why):
    return {
        "case": f"peers/{engine}/{case}", "group": "peers", "preset": p["name"], "device": device,
        "device_name": dev_name, "dtype": "", "shape": "", "status": "failed", "reason": why,
        "flops": 0, "bytes": 0, "tokens": None, "estimates": None, "tokens_per_s": None, "gbps": None,
        "gflops": None, "pct_bw_ceiling": None, "pct_flop_ceiling": None, "fits_in_cache": None,
        "measured_at": now(), "extra": None,
    }


def write_summary(path, summary):
    """Writes a summary atomically (a temporary file, then a rename)."""
    import json

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=1)
    os.replace(tmp, path)
