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
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stepaudio.errors import InvalidParameter

GIB = 1024**3
MIB = 1024**2

# --------------------------------------------------------------------------------------
# Errors


class PlanError(InvalidParameter):
    """A plan that cannot be made (bad input) or a deployment vLLM would refuse to start."""

    default_code = "plan_error"


class WeightsDoNotFit(PlanError):
    default_code = "weights_do_not_fit"


class ContextDoesNotFit(PlanError):
    default_code = "context_does_not_fit"


# --------------------------------------------------------------------------------------
# Model description


@dataclass(frozen=True)
class DecoderShape:
    """The text decoder, as a Hugging Face ``config.json`` describes it."""

    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool = False
    qkv_bias: bool = False
    max_position_embeddings: int = 32768
    num_experts: int = 1  # MoE: every expert's weights are resident
    torch_dtype: str = "bfloat16"

    def params(self) -> int:
        q_width = self.num_heads * self.head_dim
        kv_width = self.num_kv_heads * self.head_dim
        attn = self.hidden_size * (q_width + 2 * kv_width) + q_width * self.hidden_size
        if self.qkv_bias:
            attn += q_width + 2 * kv_width
        # Gated MLP (SwiGLU: gate, up, down), the shape of every current decoder.
        mlp = 3 * self.hidden_size * self.intermediate_size * self.num_experts
        if self.num_experts > 1:
            mlp += self.hidden_size * self.num_experts  # router
        norms = 2 * self.hidden_size
        embeddings = self.vocab_size * self.hidden_size
        lm_head = 0 if self.tie_word_embeddings else embeddings
        return self.num_layers * (attn + mlp + norms) + embeddings + lm_head + self.hidden_size


@dataclass(frozen=True)
class AudioEncoderShape:
    """A Whisper-like audio encoder plus the adaptor that projects it into the decoder."""

    num_layers: int
    width: int
    ffn_dim: int
    mel_bins: int = 128
    positions: int = 1500  # 30 s at 50 Hz before the stride-2 conv: 1,500 positions
    llm_dim: int = 0
    adaptor_kernel: int = 0  # 0: no downsampling conv in the adaptor
    adaptor_hidden: int = 0  # 0: a single linear projection

    def params(self) -> int:
        w = self.width
        convs = (self.mel_bins * w * 3 + w) + (w * w * 3 + w)
        layer = (4 * w * w + 3 * w) + (2 * w * self.ffn_dim + self.ffn_dim + w) + 4 * w
        encoder = convs + self.positions * w + self.num_layers * layer + 2 * w
        return encoder + self.adaptor_params()

    def adaptor_params(self) -> int:
        w = self.width
        conv = w * w * self.adaptor_kernel + w if self.adaptor_kernel else 0
        if self.adaptor_hidden:
            h = self.adaptor_hidden
            return conv + (w * h + h) + (h * self.llm_dim + self.llm_dim)
        return conv + (w * self.llm_dim + self.llm_dim)


@dataclass(frozen=True)
class ModelDescription:
    name: str
    decoder: DecoderShape
    audio: AudioEncoderShape | None = None

    @property
    def params_decoder(self) -> int:
        return self.decoder.params()

    @property
    def params_audio(self) -> int:
        return self.audio.params() if self.audio else 0

    @property
    def params_total(self) -> int:
        return self.params_decoder + self.params_audio

    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any], name: str = "custom") -> ModelDescription:
        return _parse_hf_config(config, name)


# Step-Audio-R1.1, in its config.json's own form so the built-in model goes through the
# same parser as any user's file. Decoder: Qwen2.5-32B shape; encoder: Whisper-like,
# 32 layers × 1280, 128 mel bins; adaptor: conv (k=3, stride 2) + 1280→2048→5120 MLP.
STEP_AUDIO_R1_1_CONFIG: dict[str, Any] = {
    "architectures": ["StepAudio2ForCausalLM"],
    "model_type": "step_audio_2",
    "torch_dtype": "bfloat16",
    "text_config": {
        "model_type": "qwen2",
        "num_hidden_layers": 64,
        "hidden_size": 5120,
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "intermediate_size": 27648,
        "vocab_size": 158720,
        "max_position_embeddings": 65536,
        "tie_word_embeddings": False,
        "rope_scaling": None,
    },
    "audio_encoder_config": {
        "n_mels": 128,
        "n_audio_ctx": 1500,
        "n_audio_state": 1280,
        "n_audio_head": 20,
        "n_audio_layer": 32,
        "llm_dim": 5120,
        "kernel_size": 3,
        "adapter_stride": 2,
    },
}
STEP_AUDIO_R1_1 = "Step-Audio-R1.1"

_TEXT_CONFIG_KEYS = ("text_config", "llm_config", "language_config", "thinker_config")


def _text_section(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The decoder's part of a config: nested for multimodal models, the root otherwise."""
    for key in _TEXT_CONFIG_KEYS:
        section = config.get(key)
        if isinstance(section, Mapping):
            if "num_hidden_layers" in section:
                return section
            nested = _text_section(section)  # e.g. thinker_config.text_config
            if nested is not section:
                return nested
    return config


def _req_int(section: Mapping[str, Any], key: str, where: str) -> int:
    value = section.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise PlanError(f"{where}: '{key}' is missing or not a positive integer", param="model")
    return value


def _parse_decoder(config: Mapping[str, Any], where: str) -> DecoderShape:
    text = _text_section(config)
    layers = _req_int(text, "num_hidden_layers", where)
    hidden = _req_int(text, "hidden_size", where)
    heads = _req_int(text, "num_attention_heads", where)
    kv_heads = text.get("num_key_value_heads") or heads
    head_dim = text.get("head_dim") or hidden // heads
    experts = (
        text.get("num_local_experts") or text.get("num_experts") or text.get("n_routed_experts")
    )
    intermediate = (text.get("moe_intermediate_size") if experts else None) or text.get(
        "intermediate_size"
    )
    if not intermediate:
        intermediate = 4 * hidden  # the classic transformer default when a config omits it
    tie = text.get("tie_word_embeddings", config.get("tie_word_embeddings", False))
    model_type = str(text.get("model_type") or config.get("model_type") or "")
    # Qwen2 carries q/k/v biases without saying so; others say it with attention_bias.
    qkv_bias = bool(text.get("attention_bias", model_type.startswith("qwen2")))
    dtype = text.get("torch_dtype") or config.get("torch_dtype") or text.get("dtype")
    return DecoderShape(
        num_layers=layers,
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=int(kv_heads),
        head_dim=int(head_dim),
        intermediate_size=int(intermediate),
        vocab_size=_req_int(text, "vocab_size", where),
        tie_word_embeddings=bool(tie),
        qkv_bias=qkv_bias,
        max_position_embeddings=int(text.get("max_position_embeddings") or 32768),
        num_experts=int(experts or 1),
        torch_dtype=str(dtype or config.get("dtype") or "bfloat16"),
    )


def _parse_audio(config: Mapping[str, Any], llm_dim: int) -> AudioEncoderShape | None:
    step = config.get("audio_encoder_config")
    if isinstance(step, Mapping) and step.get("n_audio_layer"):
        width = int(step["n_audio_state"])
        return AudioEncoderShape(
            num_layers=int(step["n_audio_layer"]),
            width=width,
            ffn_dim=4 * width,
            mel_bins=int(step.get("n_mels", 128)),
            positions=int(step.get("n_audio_ctx", 1500)),
            llm_dim=int(step.get("llm_dim", llm_dim)),
            adaptor_kernel=int(step.get("kernel_size", 3)),
            adaptor_hidden=2048,  # Step-Audio 2's adaptor: linear1 1280→2048, linear2 →llm
        )
    hf = config.get("audio_config")  # Qwen2-Audio / HF Whisper naming
    if isinstance(hf, Mapping) and hf.get("encoder_layers"):
        width = int(hf.get("d_model", 1280))
        return AudioEncoderShape(
            num_layers=int(hf["encoder_layers"]),
            width=width,
            ffn_dim=int(hf.get("encoder_ffn_dim", 4 * width)),
            mel_bins=int(hf.get("num_mel_bins", 128)),
            positions=int(hf.get("max_source_positions", 1500)),
            llm_dim=llm_dim,
        )
    return None


def _parse_hf_config(config: Mapping[str, Any], name: str) -> ModelDescription:
    if not isinstance(config, Mapping):
        raise PlanError(f"{name}: config.json is not a JSON object", param="model")
    decoder = _parse_decoder(config, name)
    return ModelDescription(
        name=name, decoder=decoder, audio=_parse_audio(config, decoder.hidden_size)
    )


def load_model(spec: str | Path | None = None) -> ModelDescription:
    """The built-in Step-Audio-R1.1 (``None`` or its name), or a config.json file/folder."""
    if spec is None or str(spec).strip().lower() in {STEP_AUDIO_R1_1.lower(), "step-audio-r1"}:
        return ModelDescription.from_hf_config(STEP_AUDIO_R1_1_CONFIG, STEP_AUDIO_R1_1)
    path = Path(spec).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise PlanError(
            f"model '{spec}' is neither '{STEP_AUDIO_R1_1}' nor a config.json file or a folder "
            "holding one",
            param="model",
            code="bad_model_config",
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanError(
            f"cannot read {path}: {exc}", param="model", code="bad_model_config"
        ) from exc
    name = path.parent.name if path.name == "config.json" and path.parent.name else path.stem
    return ModelDescription.from_hf_config(config, name)


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
