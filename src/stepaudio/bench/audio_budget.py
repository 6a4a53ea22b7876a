"""How much audio one request can carry: the seed's formula and the strict one."""

from __future__ import annotations

from stepaudio.engines.stepaudio.wire import PART_SECONDS, TOKENS_PER_PART

SEED_TOKENS_PER_SECOND = 12.5  # docs/seed.md §4.3: "音频编码率 = 12.5 Hz"
SEED_RESERVED_TOKENS = 1500  # docs/seed.md §4.3: "系统预留 token ≈ 1500"
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
