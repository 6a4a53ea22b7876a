"""GPU memory arithmetic under vLLM: weights, KV cache per token, what fits one GPU.

vLLM's own start-up accounting (docs/capacity.md)::

    kv_budget_per_gpu = total_gpu_memory * gpu_memory_utilization
                        - weights / tensor_parallel_size
                        - overhead (activations of the profiling run, CUDA context, NCCL)
    kv_capacity_tokens = floor(kv_budget_per_gpu / (block_size * kv_bytes_per_token_per_gpu))
                         * block_size

The overhead is one per-GPU constant calibrated on the one real observation we have
(the seed's 4×L40S deployment, see ``SEED_OBSERVATION`` and ``calibrate_overhead_gib``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stepaudio.bench.hardware import GpuSpec, kv_cache_bytes, precision, resolve_gpu
from stepaudio.bench.model_config import GIB, ModelDescription, PlanError, load_model


def weights_bytes(model: ModelDescription, dtype: str) -> float:
    spec = precision(dtype)
    return model.params_total * spec.bits_per_weight(model.decoder.hidden_size) / 8


def kv_heads_per_gpu(model: ModelDescription, tp: int) -> int:
    """vLLM shards KV heads over tensor-parallel ranks, replicating them when tp > heads."""
    d = model.decoder
    if d.num_heads % tp:
        raise PlanError(
            f"--num-gpus {tp} does not divide the {d.num_heads} attention heads "
            "(vLLM's tensor parallelism requires it)",
            param="num_gpus",
        )
    if tp >= d.num_kv_heads:
        if tp % d.num_kv_heads:
            raise PlanError(
                f"--num-gpus {tp} is not a multiple of the {d.num_kv_heads} KV heads",
                param="num_gpus",
            )
        return 1
    if d.num_kv_heads % tp:
        raise PlanError(
            f"--num-gpus {tp} does not divide the {d.num_kv_heads} KV heads", param="num_gpus"
        )
    return d.num_kv_heads // tp


def kv_bytes_per_token(model: ModelDescription, kv_bytes: int, kv_heads: int | None = None) -> int:
    """K and V, every layer: 2 × layers × kv_heads × head_dim × bytes."""
    d = model.decoder
    heads = d.num_kv_heads if kv_heads is None else kv_heads
    return 2 * d.num_layers * heads * d.head_dim * kv_bytes


@dataclass(frozen=True)
class Fit:
    """How one GPU of a tensor-parallel group spends its memory."""

    usable_gib: float
    weights_gib_per_gpu: float
    overhead_gib: float
    kv_bytes_per_token_per_gpu: int
    kv_cache_gib_per_gpu: float
    kv_capacity_tokens: int

    @property
    def weights_fit(self) -> bool:
        return self.kv_cache_gib_per_gpu > 0


def fit(
    model: ModelDescription,
    gpu: GpuSpec,
    num_gpus: int,
    dtype: str,
    kv_cache_dtype: str,
    utilization: float,
    overhead_gib: float,
    block_size: int = 16,
) -> Fit:
    per_token = kv_bytes_per_token(
        model, kv_cache_bytes(model, kv_cache_dtype), kv_heads_per_gpu(model, num_gpus)
    )
    usable = gpu.memory_gib * utilization
    weights = weights_bytes(model, dtype) / num_gpus / GIB
    kv_gib = usable - weights - overhead_gib
    # vLLM allocates whole blocks of block_size tokens; every rank gets the same count.
    blocks = max(0, math.floor(kv_gib * GIB / (per_token * block_size)))
    return Fit(usable, weights, overhead_gib, per_token, kv_gib, blocks * block_size)


# --------------------------------------------------------------------------------------
# Calibration

# The one measured deployment (docs/seed.md §4.2): 4×L40S, bf16, TP 4,
# --gpu-memory-utilization 0.85 --max-model-len 65536 → vLLM logged
# "Maximum concurrency for 65,536 tokens per request: 4.76x".
SEED_OBSERVATION: dict[str, Any] = {
    "gpu": "L40S",
    "num_gpus": 4,
    "dtype": "bf16",
    "gpu_memory_utilization": 0.85,
    "max_model_len": 65536,
    "max_concurrency": 4.76,
}


def calibrate_overhead_gib(
    model: ModelDescription | None = None, observation: Mapping[str, Any] = SEED_OBSERVATION
) -> float:
    """The per-GPU overhead that makes our arithmetic give the concurrency vLLM logged."""
    model = model or load_model()
    gpu = resolve_gpu(observation["gpu"])
    n = int(observation["num_gpus"])
    zero = fit(
        model, gpu, n, observation["dtype"], "auto", observation["gpu_memory_utilization"], 0
    )
    kv_needed = observation["max_concurrency"] * observation["max_model_len"]
    return zero.kv_cache_gib_per_gpu - kv_needed * zero.kv_bytes_per_token_per_gpu / GIB


# Rounded result of calibrate_overhead_gib() (3.61 GiB). It is what vLLM's start-up
# profile takes besides weights and KV: the activation peak of a max_num_batched_tokens
# dummy forward (≈ 2.5 GiB at 65,536 tokens over TP 4: the 2×27,648/4-wide gate/up
# output alone is 1.7 GiB) plus CUDA context, NCCL buffers and the sampler (≈ 1 GiB).
# A constant (not a function of max_model_len) keeps the planner conservative for short
# contexts; override it with --overhead-gib when your own vLLM log says otherwise.
OVERHEAD_GIB_PER_GPU = 3.6
