"""Model descriptions for the capacity planner: shapes parsed from a Hugging Face
``config.json`` (Step-Audio-R1.1 built in), and the planner's errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
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
