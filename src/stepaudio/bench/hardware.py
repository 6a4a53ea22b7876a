"""Precisions (bits per weight, KV-cache bytes) and the GPUs the planner knows."""

from __future__ import annotations

import re
from dataclasses import dataclass

from stepaudio.bench.model_config import GIB, MIB, ModelDescription, PlanError

# --------------------------------------------------------------------------------------
# Precisions and GPUs


@dataclass(frozen=True)
class Precision:
    """Bits per weight, plus the scales (and zero points) that quantized formats store."""

    name: str
    bits: int
    group_size: int | None = None  # None: one scale per output row (per-channel)
    group_overhead_bits: int = 0  # scale (+ zero point) stored per group

    def bits_per_weight(self, row_width: int) -> float:
        if not self.group_overhead_bits:
            return float(self.bits)
        group = self.group_size or row_width
        return self.bits + self.group_overhead_bits / group


PRECISIONS: dict[str, Precision] = {
    "bf16": Precision("bf16", 16),
    # FP8 (W8A8): one scale per tensor, negligible.
    "fp8": Precision("fp8", 8),
    # INT8 (W8A16 / SmoothQuant): one bf16 scale per output channel.
    "int8": Precision("int8", 8, None, 16),
    # INT4 (GPTQ/AWQ): groups of 128 with a 16-bit scale and a 4-bit zero point.
    "int4": Precision("int4", 4, 128, 16 + 4),
}

KV_CACHE_BYTES = {"bf16": 2, "fp16": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1}


@dataclass(frozen=True)
class GpuSpec:
    name: str
    memory_mib: int  # the total nvidia-smi (and torch.cuda.mem_get_info) reports

    @property
    def memory_gib(self) -> float:
        return self.memory_mib * MIB / GIB


GPUS: dict[str, GpuSpec] = {
    g.name: g
    for g in (
        GpuSpec("RTX4090", 24564),
        GpuSpec("A100-40G", 40960),
        GpuSpec("L40S", 46068),  # 48 GB nominal; 46068 MiB with ECC, as in the seed
        GpuSpec("A100-80G", 81920),
        GpuSpec("H100", 81559),
        GpuSpec("H200", 143771),
    )
}


DEFAULT_GPU = "L40S"  # the seed's hardware


def _gpu_key(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", name.upper()).removesuffix("B")


_GPU_ALIASES = {_gpu_key(g): g for g in GPUS} | {"4090": "RTX4090"}


def resolve_gpu(gpu: str | None, gpu_memory_gib: float | None = None) -> GpuSpec:
    if gpu_memory_gib is not None:
        if gpu_memory_gib <= 0:
            raise PlanError("--gpu-memory-gib must be positive", param="gpu_memory_gib")
        label = gpu or f"custom-{gpu_memory_gib:g}GiB"
        return GpuSpec(label, round(gpu_memory_gib * GIB / MIB))
    gpu = gpu or DEFAULT_GPU
    known = _GPU_ALIASES.get(_gpu_key(gpu))
    if known is None:
        raise PlanError(
            f"unknown GPU '{gpu}': choose one of {', '.join(GPUS)} or give --gpu-memory-gib",
            param="gpu",
            code="unknown_gpu",
        )
    return GPUS[known]


def precision(name: str) -> Precision:
    try:
        return PRECISIONS[name.lower()]
    except KeyError:
        raise PlanError(
            f"unknown dtype '{name}': choose one of {', '.join(PRECISIONS)}", param="dtype"
        ) from None


def kv_cache_bytes(model: ModelDescription, kv_cache_dtype: str) -> int:
    """Bytes per KV element. 'auto' = the model's activation dtype (vLLM's rule), which
    stays bf16 even for int8/int4/fp8 weights."""
    name = kv_cache_dtype.lower()
    if name == "auto":
        return 2  # vLLM serves fp32 checkpoints in 16-bit too
    if name not in KV_CACHE_BYTES:
        raise PlanError(
            f"unknown kv cache dtype '{kv_cache_dtype}': auto, {', '.join(KV_CACHE_BYTES)}",
            param="kv_cache_dtype",
        )
    return KV_CACHE_BYTES[name]
