#!/usr/bin/env python3
"""A random-weight llama GGUF at a real model's size, for timing on a GPU what cannot be carried
there (the lent machine reaches no model hub, and at most 64 MiB travel): the shapes, and so the
work per token, the memory and the load time, are those of the real model; the answers are
noise. The tokenizer and chat template come from a small real GGUF (SmolLM2's, 49152 tokens).

Usage: random_llama.py TOKENIZER.gguf OUT.gguf [PRESET]   (needs numpy and gguf from PyPI)
PRESETS: "1b" (Llama-3.2-1B's layout: 2048 wide, 16 layers, 32/8 heads, 8192 FFN; F16, 2.1 GB),
"small" (a few MB, to check this script and the check itself on a CPU), "tokenizer" (the
tokenizer alone, no tensors: what tests/gpu/build.sh carries to the GPU machine)."""
import os
import sys

import gguf
import numpy as np

PRESETS = {
    # n_embd, n_ff, n_layer, n_head, n_head_kv, context
    "1b": (2048, 8192, 16, 32, 8, 8192),
    "small": (128, 256, 2, 4, 2, 2048),
}

src, out = sys.argv[1], sys.argv[2]
preset = sys.argv[3] if len(sys.argv) > 3 else "1b"

reader = gguf.GGUFReader(src)
w = gguf.GGUFWriter(out, "llama")
for field in reader.fields.values():
    if not field.name.startswith("tokenizer."):
        continue
    kind = field.types[0]
    if kind == gguf.GGUFValueType.ARRAY:
        if field.types[-1] == gguf.GGUFValueType.STRING:
            value = [bytes(field.parts[i]).decode("utf-8", "surrogateescape") for i in field.data]
        else:
            value = [field.parts[i].tolist()[0] for i in field.data]
        w.add_array(field.name, value)
    elif kind == gguf.GGUFValueType.STRING:
        w.add_string(field.name, bytes(field.parts[field.data[0]]).decode("utf-8"))
    else:
        w.add_key_value(field.name, field.parts[field.data[0]].tolist()[0], kind)
n_vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
if preset == "tokenizer":
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    print(f"wrote {out}: the tokenizer of {src} ({n_vocab} tokens)")
    sys.exit(0)
n_embd, n_ff, n_layer, n_head, n_head_kv, n_ctx = PRESETS[preset]
head_dim = n_embd // n_head

w.add_name(f"random-llama-{n_embd}x{n_layer} (GPU check fixture)")
w.add_context_length(n_ctx)
w.add_embedding_length(n_embd)
w.add_feed_forward_length(n_ff)
w.add_block_count(n_layer)
w.add_head_count(n_head)
w.add_head_count_kv(n_head_kv)
w.add_rope_dimension_count(head_dim)
w.add_rope_freq_base(500000.0)
w.add_layer_norm_rms_eps(1e-5)
w.add_vocab_size(n_vocab)
w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

# One pool of random values, sliced for every matrix: the values do not change the work, and
# drawing 1.2 billion of them one by one would take longer than the check has.
rng = np.random.default_rng(0)
pool = (rng.standard_normal(max(n_vocab * n_embd, n_ff * n_embd), dtype=np.float32) * 0.02).astype(np.float16)


def matrix(rows, cols):
    return pool[: rows * cols].reshape(rows, cols)


ones = np.ones(n_embd, np.float32)
w.add_tensor("token_embd.weight", matrix(n_vocab, n_embd))
for i in range(n_layer):
    p = f"blk.{i}."
    w.add_tensor(p + "attn_norm.weight", ones)
    w.add_tensor(p + "attn_q.weight", matrix(n_head * head_dim, n_embd))
    w.add_tensor(p + "attn_k.weight", matrix(n_head_kv * head_dim, n_embd))
    w.add_tensor(p + "attn_v.weight", matrix(n_head_kv * head_dim, n_embd))
    w.add_tensor(p + "attn_output.weight", matrix(n_embd, n_head * head_dim))
    w.add_tensor(p + "ffn_norm.weight", ones)
    w.add_tensor(p + "ffn_gate.weight", matrix(n_ff, n_embd))
    w.add_tensor(p + "ffn_up.weight", matrix(n_ff, n_embd))
    w.add_tensor(p + "ffn_down.weight", matrix(n_embd, n_ff))
w.add_tensor("output_norm.weight", ones)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print(f"wrote {out}: {os.path.getsize(out)} bytes, vocab {n_vocab}, {n_layer} layers of {n_embd}")
