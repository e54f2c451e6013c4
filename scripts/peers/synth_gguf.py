#!/usr/bin/env python3
"""Writes a preset's synthetic model (the safetensors folder `mistral-rs-bench synth PRESET`
makes) as a GGUF file that llama.cpp loads, in the dtype the engine computes in (f16 on this
CPU, bf16 on the GPU), with the `gguf` package's writer. llama.cpp does not take the synthetic
word-level tokenizer, so the tokenizer comes from another GGUF whose vocabulary has the same
size (SmolLM2's, 49152 tokens): the token ids the runners feed are the same either way.

    python3 scripts/peers/synth_gguf.py --synth-dir target/mistral-rs-bench/models/smollm2-135m-bf16 \\
        --tokenizer-from models/SmolLM2-135M-Instruct.Q4_1.gguf --dtype f16 \\
        --out target/mistral-rs-bench/models/smollm2-135m-synthetic-f16.gguf

The tensors are the same numbers as the safetensors model (rounded to the dtype); q and k
are permuted from the Hugging Face rotary layout to GGML's, as llama.cpp's converter does for
Llama, so that both engines compute the same function of the same weights.

Two more modes for a machine that cannot receive the model files (the GPU machines take
64 MiB per call): `--tokenizer-only` writes a GGUF holding only the tokenizer (about 1 MiB,
carried there), and `--random-preset NAME` writes a model of a models.toml preset's shapes
with seeded random weights (timing does not depend on the values) instead of reading
`--synth-dir`; `--dtype q4_1` quantizes it as the real SmolLM2 GGUF is.
"""
import argparse
import json
import os
import sys


def permute(w, n_head):
    """HF's q/k rows (halves of each head rotated together) to GGML's (pairs interleaved)."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_name(hf):
    """The GGUF tensor name of a Hugging Face Llama tensor name (None: not stored)."""
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if hf in fixed:
        return fixed[hf]
    parts = hf.split(".")
    if parts[:2] != ["model", "layers"]:
        return None
    n, rest = parts[2], ".".join(parts[3:])
    per_layer = {
        "input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    }
    return f"blk.{n}.{per_layer[rest]}" if rest in per_layer else None


def tensors(a, cfg):
    """(GGUF name, f32 array) of every tensor: the synthetic safetensors model, or seeded
    random weights of the preset's shapes."""
    import numpy as np

    if a.random_preset:
        h, i, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
        q, kv = cfg["num_attention_heads"] * cfg["head_dim"], cfg["num_key_value_heads"] * cfg["head_dim"]
        g = np.random.default_rng(0)
        rnd = lambda *shape: (g.standard_normal(shape, dtype=np.float32) * 0.02)
        yield "token_embd.weight", rnd(v, h)
        for n in range(cfg["num_hidden_layers"]):
            yield f"blk.{n}.attn_norm.weight", np.ones(h, np.float32)
            yield f"blk.{n}.ffn_norm.weight", np.ones(h, np.float32)
            for name, shape in (("attn_q", (q, h)), ("attn_k", (kv, h)), ("attn_v", (kv, h)),
                                ("attn_output", (h, q)), ("ffn_gate", (i, h)), ("ffn_up", (i, h)),
                                ("ffn_down", (h, i))):
                yield f"blk.{n}.{name}.weight", rnd(*shape)
        yield "output_norm.weight", np.ones(h, np.float32)
        if not cfg["tie_word_embeddings"]:
            yield "output.weight", rnd(v, h)
        return
    import torch
    from safetensors import safe_open

    with safe_open(os.path.join(a.synth_dir, "model.safetensors"), framework="pt") as f:
        for hf in f.keys():
            name = gguf_name(hf)
            if name is None:
                sys.exit(f"synth_gguf: no GGUF name for {hf}")
            t = f.get_tensor(hf).to(torch.float32)
            if hf.endswith("q_proj.weight"):
                t = permute(t, cfg["num_attention_heads"])
            elif hf.endswith("k_proj.weight"):
                t = permute(t, cfg["num_key_value_heads"])
            yield name, t.numpy().astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth-dir")
    ap.add_argument("--random-preset", help="a models.toml preset: seeded random weights of its shapes")
    ap.add_argument("--models-toml", default=os.path.join(os.path.dirname(__file__), "..", "..", "models.toml"))
    ap.add_argument("--tokenizer-only", action="store_true", help="write the tokenizer fields only")
    ap.add_argument("--tokenizer-from", required=True, help="a GGUF file whose tokenizer.* fields are copied")
    ap.add_argument("--dtype", default="f16", choices=["f16", "bf16", "f32", "q4_1"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    if os.path.exists(a.out) and not a.force:
        sys.exit(f"synth_gguf: {a.out} exists; pass --force to overwrite it")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    import gguf

    tok = gguf.GGUFReader(a.tokenizer_from)
    tokens = tok.fields.get("tokenizer.ggml.tokens")
    n_tok = len(tokens.data) if tokens else 0

    def copy_tokenizer(w):
        for name, field in tok.fields.items():
            if not name.startswith("tokenizer."):
                continue
            vtype = field.types[0]
            sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
            w.add_key_value(name, field.contents(), vtype, sub)

    if a.tokenizer_only:
        w = gguf.GGUFWriter(a.out + ".tmp", "llama")
        copy_tokenizer(w)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.replace(a.out + ".tmp", a.out)
        print(a.out)
        return
    if a.random_preset:
        import tomllib

        with open(a.models_toml, "rb") as f:
            pr = tomllib.load(f)["presets"][a.random_preset]
        cfg = {"vocab_size": pr["vocab"], "hidden_size": pr["hidden"], "intermediate_size": pr["intermediate"],
               "num_hidden_layers": pr["layers"], "num_attention_heads": pr["heads"],
               "num_key_value_heads": pr["kv_heads"], "head_dim": pr["head_dim"],
               "max_position_embeddings": pr["max_context"], "rope_theta": pr["rope_theta"],
               "rms_norm_eps": pr.get("rms_eps", 1e-5), "tie_word_embeddings": pr.get("tie_embeddings", False)}
    elif a.synth_dir:
        cfg = json.load(open(os.path.join(a.synth_dir, "config.json")))
    else:
        sys.exit("synth_gguf: pass --synth-dir, --random-preset or --tokenizer-only")
    if n_tok != cfg["vocab_size"]:
        sys.exit(f"synth_gguf: {a.tokenizer_from} has {n_tok} tokens, the model {cfg['vocab_size']}")
    ftype = {"f16": gguf.LlamaFileType.MOSTLY_F16, "bf16": gguf.LlamaFileType.MOSTLY_BF16,
             "f32": gguf.LlamaFileType.ALL_F32, "q4_1": gguf.LlamaFileType.MOSTLY_Q4_1}[a.dtype]
    qtype = {"f16": gguf.GGMLQuantizationType.F16, "bf16": gguf.GGMLQuantizationType.BF16,
             "f32": gguf.GGMLQuantizationType.F32, "q4_1": gguf.GGMLQuantizationType.Q4_1}[a.dtype]
    tmp = a.out + ".tmp"
    w = gguf.GGUFWriter(tmp, "llama")
    src = f"{a.random_preset} random" if a.random_preset else os.path.basename(os.path.normpath(a.synth_dir))
    w.add_name(src + " (mistral-rs-bench synthetic)")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_key_length(cfg["head_dim"])
    w.add_value_length(cfg["head_dim"])
    w.add_rope_dimension_count(cfg["head_dim"])
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_file_type(ftype)
    copy_tokenizer(w)
    for name, x in tensors(a, cfg):
        if x.ndim == 1:  # norms stay f32, as llama.cpp's converter stores them
            w.add_tensor(name, x)
        else:
            w.add_tensor(name, gguf.quants.quantize(x, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, a.out)
    print(a.out)


if __name__ == "__main__":
    main()
