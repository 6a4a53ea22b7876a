"""Capacity planner: how a model fits a set of GPUs under vLLM (`stepaudio plan`).

Everything here is arithmetic on the model's shapes and the GPUs' memory, so it runs
anywhere (no GPU, no weights). The memory model is vLLM's own start-up accounting::

    kv_budget_per_gpu = total_gpu_memory * gpu_memory_utilization
                        - weights / tensor_parallel_size
                        - overhead (activations of the profiling run, CUDA context, NCCL)
    kv_capacity_tokens = floor(kv_budget_per_gpu / (block_size * kv_bytes_per_token_per_gpu))
                         * block_size
    max_concurrency    = kv_capacity_tokens / max_model_len   ("Maximum concurrency … 4.76x")

The overhead is one per-GPU constant calibrated on the one real observation we have
(the seed's 4×L40S deployment, see ``SEED_OBSERVATION`` and ``calibrate_overhead_gib``);
docs/capacity.md explains it.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stepaudio.bench.hardware import (
    GPUS,
    PRECISIONS,
    GpuSpec,
    kv_cache_bytes,
    precision,
    resolve_gpu,
)
from stepaudio.bench.model_config import (
    GIB,
    ContextDoesNotFit,
    ModelDescription,
    PlanError,
    WeightsDoNotFit,
    load_model,
)

# --------------------------------------------------------------------------------------
# Memory arithmetic


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

# The one measured deployment (DESIGN §2, seed report §2/§4): 4×L40S, bf16, TP 4,
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


# --------------------------------------------------------------------------------------
# Audio budget

SEED_TOKENS_PER_SECOND = 12.5  # seed §4.3: "音频编码率 = 12.5 Hz"
SEED_RESERVED_TOKENS = 1500  # seed §4.3: "系统预留 token ≈ 1500"
PART_SECONDS = 25  # DESIGN §2: one audio part is at most 25 s …
TOKENS_PER_PART = 315  # … and costs 313 patches + 2 markers
DEFAULT_PROMPT_TOKENS = 200  # system prompt + instruction + chat template
DEFAULT_MAX_TOKENS = 2048  # the seed's API default output budget


def seed_audio_minutes(max_model_len: int) -> float:
    """Seed §4.3: (max_model_len - 1500) / 12.5 seconds."""
    return max(0.0, (max_model_len - SEED_RESERVED_TOKENS) / SEED_TOKENS_PER_SECOND / 60)


def strict_audio_minutes(
    max_model_len: int,
    prompt_tokens: int = DEFAULT_PROMPT_TOKENS,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> float:
    """Longest audio whose request (prompt + ceil(s/25)·315 + max_tokens) fits the context."""
    room = max_model_len - prompt_tokens - max_tokens
    parts = max(0, room // TOKENS_PER_PART)
    return parts * PART_SECONDS / 60


# --------------------------------------------------------------------------------------
# Report

# Seed §4.2 (configuration history) plus DESIGN §2's 65,536 deployment.
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
        return _render(self, width)


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


# --------------------------------------------------------------------------------------
# Text rendering


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def _render(r: PlanReport, width: int) -> str:
    from rich.console import Console
    from rich.table import Table

    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None)
    m = r.model

    summary = Table(title=f"{m['name']} on {r.num_gpus}× {r.gpu}", show_header=False)
    summary.add_column(style="bold")
    summary.add_column()
    rows = [
        (
            "parameters",
            f"{m['params_total'] / 1e9:.2f} B "
            f"(decoder {m['params_decoder'] / 1e9:.2f} B, audio {m['params_audio'] / 1e9:.2f} B)",
        ),
        (
            "GPU memory",
            f"{r.gpu_memory_gib:.2f} GiB × {r.num_gpus}, utilization {r.gpu_memory_utilization:g}",
        ),
        ("weights", f"{r.weights_gib:.1f} GiB {r.dtype} → {r.weights_gib_per_gpu:.1f} GiB per GPU"),
        (
            "overhead",
            f"{r.overhead_gib_per_gpu:.1f} GiB per GPU (calibrated, see docs/capacity.md)",
        ),
        (
            "KV cache per token",
            f"{r.kv_cache_bytes_per_token / 1024:.0f} KiB {r.kv_cache_dtype} "
            f"({r.kv_cache_bytes_per_token_per_gpu / 1024:.0f} KiB per GPU)",
        ),
        ("KV cache", f"{r.kv_cache_gib_per_gpu:.2f} GiB per GPU = {r.kv_capacity_tokens:,} tokens"),
        ("max_concurrency", f"{r.max_concurrency:.2f}x for {r.max_model_len:,} tokens per request"),
        (
            "max_num_seqs",
            f"{r.max_num_seqs} "
            f"({'all' if r.kv_holds_max_num_seqs else 'NOT all'} held at full length)",
        ),
        (
            "audio per request",
            f"{_fmt(r.max_audio_minutes_per_request)} min strict "
            f"(315 tok/25 s + {r.prompt_tokens} prompt + {r.max_tokens} output); "
            f"{_fmt(r.max_audio_minutes_per_request_seed_formula)} min by the seed's formula",
        ),
    ]
    for key, value in rows:
        summary.add_row(key, value)
    console.print(summary)

    history = Table(
        title="max_model_len ↔ max_num_seqs (seed §4.2) on this hardware; audio minutes per request"
    )
    for col in (
        "max_model_len",
        "max_num_seqs",
        "concurrency",
        "fits all",
        "min (seed)",
        "min (strict)",
        "seed min",
    ):
        history.add_column(col, justify="right")
    for row in r.seed_table:
        history.add_row(
            f"{row.max_model_len:,}",
            str(row.max_num_seqs),
            f"{row.max_concurrency:.2f}x",
            "yes" if row.kv_holds_max_num_seqs else "no",
            _fmt(row.audio_minutes_seed_formula),
            _fmt(row.audio_minutes_strict),
            _fmt(row.seed_reported_minutes, ".0f"),
        )
    console.print(history)

    sets = Table(
        title=f"Smallest GPU set per precision (util 0.9, one {r.max_model_len:,}-token request)"
    )
    sets.add_column("dtype")
    sets.add_column("weights GiB", justify="right")
    gpu_names = list(r.smallest_gpu_sets[0].min_gpus) if r.smallest_gpu_sets else []
    for name in gpu_names:
        sets.add_column(name, justify="right")
    sets.add_column("smallest")
    for p in r.smallest_gpu_sets:
        best = f"{p.smallest.num_gpus}× {p.smallest.gpu}" if p.smallest else "none"
        cells = [f"{p.min_gpus[g]}×" if p.min_gpus[g] else "—" for g in gpu_names]
        sets.add_row(p.dtype, f"{p.weights_gib:.1f}", *cells, best)
    console.print(sets)
    return out.getvalue()
