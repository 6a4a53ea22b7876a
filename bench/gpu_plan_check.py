"""Check the planner's weight and KV-cache arithmetic against real GPU memory.

Builds the Step-Audio-R1.1 decoder shape (Qwen2.5-32B: hidden 5120, 40 heads, 8 KV heads,
intermediate 27648, vocab 158720) at reduced depth with random bf16 weights on the GPU,
then compares ``torch.cuda.memory_allocated`` with ``stepaudio plan``'s figures:

- weights: parameters allocated vs ``DecoderShape.params()`` × 2 bytes, at two depths,
  so the per-layer and the fixed (embeddings, lm_head) parts are both checked;
- KV cache: the cache tensors a forward pass of N tokens leaves behind vs
  ``kv_bytes_per_token`` × N.

Needs an NVIDIA GPU, PyTorch and transformers (the device machine has them):
``PYTHONPATH=src python3 bench/gpu_plan_check.py [64]``. Not part of CI.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from stepaudio.bench.memory import kv_bytes_per_token
from stepaudio.bench.model_config import ModelDescription, load_model

GIB = 2**30


def build(decoder, layers: int) -> tuple[Qwen2ForCausalLM, int]:
    config = Qwen2Config(
        hidden_size=decoder.hidden_size,
        intermediate_size=decoder.intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=decoder.num_heads,
        num_key_value_heads=decoder.num_kv_heads,
        vocab_size=decoder.vocab_size,
        max_position_embeddings=decoder.max_position_embeddings,
        tie_word_embeddings=decoder.tie_word_embeddings,
    )
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    model.eval()
    torch.cuda.synchronize()
    return model, torch.cuda.memory_allocated() - before


def kv_check(model: Qwen2ForCausalLM, tokens: int) -> int:
    ids = torch.randint(0, model.config.vocab_size, (1, tokens), device="cuda")
    with torch.no_grad():
        out = model.model(input_ids=ids, use_cache=True)
    cache = out.past_key_values
    total = 0
    for layer in cache.layers:
        total += layer.keys.numel() * layer.keys.element_size()
        total += layer.values.numel() * layer.values.element_size()
    return total


def main() -> None:
    decoder = load_model(None).decoder
    # Two reduced depths separate the per-layer and fixed parts; pass "64" as a third
    # depth on a GPU with room for the whole decoder (an H200) to check it directly.
    depths = (2, 6, *(int(a) for a in sys.argv[1:]))
    rows = []
    measured = {}
    for layers in depths:
        reduced = dataclasses.replace(decoder, num_layers=layers)
        model, allocated = build(decoder, layers)
        params = sum(p.numel() for p in model.parameters())
        tokens = 16384 if layers <= 8 else 8192
        kv = kv_check(model, tokens)
        predicted_kv = kv_bytes_per_token(ModelDescription("reduced", reduced), 2) * tokens
        measured[layers] = allocated
        rows.append(
            {
                "layers": layers,
                "params_torch": params,
                "params_planner": reduced.params(),
                "weights_allocated_gib": round(allocated / GIB, 4),
                "weights_planner_gib": round(reduced.params() * 2 / GIB, 4),
                "kv_tokens": tokens,
                "kv_cache_measured_mib": round(kv / 2**20, 2),
                "kv_cache_planner_mib": round(predicted_kv / 2**20, 2),
            }
        )
        del model
        torch.cuda.empty_cache()
    per_layer = (measured[depths[1]] - measured[depths[0]]) / (depths[1] - depths[0])
    fixed = measured[depths[0]] - depths[0] * per_layer
    full = fixed + decoder.num_layers * per_layer
    summary = {
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "per_layer_measured_mib": round(per_layer / 2**20, 2),
        "per_layer_planner_mib": round(
            (
                dataclasses.replace(decoder, num_layers=1).params()
                - dataclasses.replace(decoder, num_layers=0).params()
            )
            * 2
            / 2**20,
            2,
        ),
        "decoder_64_layers_extrapolated_gib": round(full / GIB, 3),
        "decoder_64_layers_planner_gib": round(decoder.params() * 2 / GIB, 3),
        "kv_per_token_planner_kib_full_model": kv_bytes_per_token(load_model(None), 2) / 1024,
    }
    json.dump({"rows": rows, "summary": summary}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
