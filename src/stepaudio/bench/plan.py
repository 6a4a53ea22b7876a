"""Capacity planner: how a model fits a set of GPUs under vLLM (`stepaudio plan`).


Everything here is arithmetic on the model's shapes and the GPUs' memory, so it runs
anywhere (no GPU, no weights). The memory model (vLLM's start-up accounting) is in
``bench/memory.py``, the audio budget per request in ``bench/audio_budget.py``, the text
tables in ``bench/plan_render.py``; this module puts them together into a ``PlanReport``
and refuses the deployments vLLM would refuse::

    max_concurrency    = kv_capacity_tokens / max_model_len   ("Maximum concurrency … 4.76x")
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stepaudio.bench.audio_budget import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_PROMPT_TOKENS,
    seed_audio_minutes,
    strict_audio_minutes,
)
from stepaudio.bench.hardware import (
    GPUS,
    PRECISIONS,
    GpuSpec,
    kv_cache_bytes,
    precision,
    resolve_gpu,
)
from stepaudio.bench.memory import (
    OVERHEAD_GIB_PER_GPU,
    Fit,
    fit,
    kv_bytes_per_token,
    weights_bytes,
)
from stepaudio.bench.model_config import (
    GIB,
    ContextDoesNotFit,
    ModelDescription,
    PlanError,
    WeightsDoNotFit,
    load_model,
)
from stepaudio.bench.plan_render import render_plan

# Seed §4.2 (configuration history, docs/seed.md) plus the 65,536 deployment users ran.
SEED_TABLE_ROWS: tuple[tuple[int, int, float | None], ...] = (
    (8192, 32, 8),
    (16384, 16, 20),
    (32768, 8, 40),
    (49152, 4, 60),
    (65536, 4, None),
)


@dataclass(frozen=True)
class SeedRow:
    max_model_len: int
    max_num_seqs: int
    max_concurrency: float
    kv_holds_max_num_seqs: bool
    within_max_position_embeddings: bool
    audio_minutes_seed_formula: float | None
    audio_minutes_strict: float | None
    seed_reported_minutes: float | None


@dataclass(frozen=True)
class GpuSet:
    gpu: str
    num_gpus: int
    total_memory_gib: float
    max_concurrency: float


@dataclass(frozen=True)
class PrecisionSets:
    dtype: str
    weights_gib: float
    min_gpus: dict[str, int | None]
    smallest: GpuSet | None


@dataclass
class PlanReport:
    model: dict[str, Any]
    gpu: str
    gpu_memory_gib: float
    num_gpus: int
    dtype: str
    kv_cache_dtype: str
    gpu_memory_utilization: float
    max_model_len: int
    max_num_seqs: int
    max_tokens: int
    prompt_tokens: int
    weights_gib: float
    weights_gib_per_gpu: float
    overhead_gib_per_gpu: float
    kv_cache_bytes_per_token: int
    kv_cache_bytes_per_token_per_gpu: int
    kv_cache_gib_per_gpu: float
    kv_capacity_tokens: int
    max_concurrency: float
    kv_holds_max_num_seqs: bool
    max_audio_minutes_per_request: float | None
    max_audio_minutes_per_request_seed_formula: float | None
    weights_by_dtype: dict[str, dict[str, float]]
    seed_table: list[SeedRow] = field(default_factory=list)
    smallest_gpu_sets: list[PrecisionSets] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def render_text(self, width: int = 110) -> str:
        return render_plan(self, width)


def _concurrency(capacity_tokens: int, max_model_len: int) -> float:
    return round(capacity_tokens / max_model_len, 2)  # vLLM logs "%.2fx"


def _model_info(model: ModelDescription) -> dict[str, Any]:
    d = model.decoder
    return {
        "name": model.name,
        "params_total": model.params_total,
        "params_decoder": model.params_decoder,
        "params_audio": model.params_audio,
        "num_layers": d.num_layers,
        "hidden_size": d.hidden_size,
        "num_heads": d.num_heads,
        "num_kv_heads": d.num_kv_heads,
        "head_dim": d.head_dim,
        "vocab_size": d.vocab_size,
        "max_position_embeddings": d.max_position_embeddings,
    }


def seed_table(
    model: ModelDescription,
    capacity_tokens: int,
    prompt_tokens: int = DEFAULT_PROMPT_TOKENS,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    rows: Iterable[tuple[int, int, float | None]] = SEED_TABLE_ROWS,
) -> list[SeedRow]:
    audio = model.audio is not None
    return [
        SeedRow(
            max_model_len=length,
            max_num_seqs=seqs,
            max_concurrency=_concurrency(capacity_tokens, length),
            kv_holds_max_num_seqs=capacity_tokens >= seqs * length,
            within_max_position_embeddings=length <= model.decoder.max_position_embeddings,
            audio_minutes_seed_formula=round(seed_audio_minutes(length), 1) if audio else None,
            audio_minutes_strict=(
                round(strict_audio_minutes(length, prompt_tokens, max_tokens), 1) if audio else None
            ),
            seed_reported_minutes=reported,
        )
        for length, seqs, reported in rows
    ]


def smallest_gpu_sets(
    model: ModelDescription,
    max_model_len: int,
    kv_cache_dtype: str = "auto",
    utilization: float = 0.9,
    overhead_gib: float = OVERHEAD_GIB_PER_GPU,
    dtypes: Sequence[str] = ("bf16", "fp8", "int8", "int4"),
    gpus: Sequence[GpuSpec] = tuple(GPUS.values()),
    counts: Sequence[int] = (1, 2, 4, 8),
) -> list[PrecisionSets]:
    """Per precision: fewest GPUs of each kind that hold the weights and one full-length
    request; the overall smallest is the set with the least total memory."""
    result = []
    for dtype in dtypes:
        min_gpus: dict[str, int | None] = {}
        candidates: list[GpuSet] = []
        for gpu in gpus:
            min_gpus[gpu.name] = None
            for n in counts:
                try:
                    f = fit(model, gpu, n, dtype, kv_cache_dtype, utilization, overhead_gib)
                except PlanError:
                    continue  # n does not divide the heads
                if f.kv_capacity_tokens >= max_model_len:
                    min_gpus[gpu.name] = n
                    total = round(n * gpu.memory_gib, 1)
                    conc = _concurrency(f.kv_capacity_tokens, max_model_len)
                    candidates.append(GpuSet(gpu.name, n, total, conc))
                    break
        smallest = min(candidates, key=lambda s: (s.total_memory_gib, s.num_gpus), default=None)
        weights = round(weights_bytes(model, dtype) / GIB, 1)
        result.append(PrecisionSets(dtype, weights, min_gpus, smallest))
    return result


def _weights_refusal(
    model: ModelDescription,
    gpu: GpuSpec,
    num_gpus: int,
    dtype: str,
    f: Fit,
    max_model_len: int,
    kv_cache_dtype: str,
    utilization: float,
    overhead_gib: float,
) -> WeightsDoNotFit:
    hints = []
    for n in (2, 4, 8):
        if n <= num_gpus:
            continue
        try:
            other = fit(model, gpu, n, dtype, kv_cache_dtype, utilization, overhead_gib)
        except PlanError:
            continue
        if other.kv_capacity_tokens >= max_model_len:
            hints.append(f"--num-gpus {n}")
            break
    for other_dtype in PRECISIONS:
        other = fit(model, gpu, num_gpus, other_dtype, kv_cache_dtype, utilization, overhead_gib)
        if other.kv_capacity_tokens >= max_model_len:
            hints.append(f"--dtype {other_dtype}")
            break
    hint = f" Try {' or '.join(hints)}." if hints else ""
    return WeightsDoNotFit(
        f"{model.name} {dtype} weights do not fit: {f.weights_gib_per_gpu:.1f} GiB per GPU "
        f"(total {f.weights_gib_per_gpu * num_gpus:.1f} GiB over {num_gpus}× {gpu.name}) plus "
        f"{f.overhead_gib:.1f} GiB overhead exceed the {f.usable_gib:.1f} GiB that "
        f"--gpu-memory-utilization {utilization:g} leaves on each "
        f"{gpu.memory_gib:.1f} GiB GPU.{hint}",
        param="dtype",
    )


def plan(
    model: ModelDescription | str | Path | None = None,
    *,
    gpu: str | None = None,
    gpu_memory_gib: float | None = None,
    num_gpus: int = 4,
    dtype: str = "bf16",
    kv_cache_dtype: str = "auto",
    gpu_memory_utilization: float = 0.85,
    max_model_len: int | None = None,
    max_num_seqs: int = 4,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    prompt_tokens: int = DEFAULT_PROMPT_TOKENS,
    overhead_gib: float = OVERHEAD_GIB_PER_GPU,
) -> PlanReport:
    """Plan a vLLM deployment; raises WeightsDoNotFit / ContextDoesNotFit where vLLM
    would refuse to start, PlanError for bad input. Defaults: the seed's deployment."""
    if not isinstance(model, ModelDescription):
        model = load_model(model)
    spec = resolve_gpu(gpu, gpu_memory_gib)
    dtype = precision(dtype).name
    if not 0 < gpu_memory_utilization <= 1:
        raise PlanError(
            "--gpu-memory-utilization must be in (0, 1]", param="gpu_memory_utilization"
        )
    for name, value in (("num-gpus", num_gpus), ("max-num-seqs", max_num_seqs)):
        if value < 1:
            raise PlanError(f"--{name} must be at least 1", param=name.replace("-", "_"))
    if max_tokens < 0 or prompt_tokens < 0:
        raise PlanError("--max-tokens and --prompt-tokens must not be negative", param="max_tokens")
    limit = model.decoder.max_position_embeddings
    length = max_model_len or limit  # vLLM's default: the model's own limit
    if length < 1:
        raise PlanError("--max-model-len must be positive", param="max_model_len")
    if length > limit:
        raise ContextDoesNotFit(
            f"--max-model-len {length} exceeds the model's max_position_embeddings ({limit}); "
            "vLLM refuses it",
            param="max_model_len",
        )

    f = fit(model, spec, num_gpus, dtype, kv_cache_dtype, gpu_memory_utilization, overhead_gib)
    if not f.weights_fit:
        raise _weights_refusal(
            model,
            spec,
            num_gpus,
            dtype,
            f,
            length,
            kv_cache_dtype,
            gpu_memory_utilization,
            overhead_gib,
        )
    if f.kv_capacity_tokens < length:
        raise ContextDoesNotFit(
            f"the KV cache holds {f.kv_capacity_tokens:,} tokens "
            f"({f.kv_cache_gib_per_gpu:.2f} GiB per GPU), fewer than one request of "
            f"--max-model-len {length:,}; vLLM refuses to start. Largest max_model_len that "
            f"fits: {f.kv_capacity_tokens:,}; or raise --gpu-memory-utilization or --num-gpus.",
            param="max_model_len",
        )

    kv_bytes = kv_cache_bytes(model, kv_cache_dtype)
    audio = model.audio is not None
    return PlanReport(
        model=_model_info(model),
        gpu=spec.name,
        gpu_memory_gib=round(spec.memory_gib, 2),
        num_gpus=num_gpus,
        dtype=dtype,
        kv_cache_dtype="bf16" if kv_cache_dtype.lower() == "auto" else kv_cache_dtype.lower(),
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=length,
        max_num_seqs=max_num_seqs,
        max_tokens=max_tokens,
        prompt_tokens=prompt_tokens,
        weights_gib=round(f.weights_gib_per_gpu * num_gpus, 2),
        weights_gib_per_gpu=round(f.weights_gib_per_gpu, 2),
        overhead_gib_per_gpu=overhead_gib,
        kv_cache_bytes_per_token=kv_bytes_per_token(model, kv_bytes),
        kv_cache_bytes_per_token_per_gpu=f.kv_bytes_per_token_per_gpu,
        kv_cache_gib_per_gpu=round(f.kv_cache_gib_per_gpu, 2),
        kv_capacity_tokens=f.kv_capacity_tokens,
        max_concurrency=_concurrency(f.kv_capacity_tokens, length),
        kv_holds_max_num_seqs=f.kv_capacity_tokens >= max_num_seqs * length,
        max_audio_minutes_per_request=(
            round(strict_audio_minutes(length, prompt_tokens, max_tokens), 1) if audio else None
        ),
        max_audio_minutes_per_request_seed_formula=(
            round(seed_audio_minutes(length), 1) if audio else None
        ),
        weights_by_dtype={
            name: {
                "total_gib": round(weights_bytes(model, name) / GIB, 1),
                "per_gpu_gib": round(weights_bytes(model, name) / num_gpus / GIB, 1),
            }
            for name in PRECISIONS
        },
        seed_table=seed_table(model, f.kv_capacity_tokens, prompt_tokens, max_tokens),
        smallest_gpu_sets=smallest_gpu_sets(model, length, kv_cache_dtype, 0.9, overhead_gib),
    )
