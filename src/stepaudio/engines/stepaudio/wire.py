"""Step-Audio-R1.1's facts, in one place: audio part lengths, what a part costs in prompt
tokens, the prefills and stop token of its reply format, and the budget arithmetic built
on them. The engine, the audio report (``pipeline/describe.py``), the capacity planner
(``bench/``) and the vLLM stand-in (``testing/standin.py``) all read them from here.

Sources: StepFun's own client (``stepaudior1vllm.py`` in the Step-Audio-R1 repository)
and the model's config: the audio encoder has 1,500 positions at 25 Hz (so a part over
29.98 s makes vLLM fail) and turns 25 s into 313 patches between 2 markers.
"""

from __future__ import annotations

import math

PART_SECONDS = 25.0
"""Longest audio part StepFun's client sends (parts are cut at quiet points)."""
HARD_PART_SECONDS = 29.98
"""The encoder's limit: vLLM fails on a longer part."""
PATCHES_PER_PART = 313
PART_MARKERS = 2
"""Begin/end markers around each part's patches."""
TOKENS_PER_PART = PATCHES_PER_PART + PART_MARKERS
"""Prompt tokens of one full 25 s part: 315."""
PATCHES_PER_SECOND = PATCHES_PER_PART / PART_SECONDS
"""12.52: the per-second part of a part's cost, markers apart (``audio_part_tokens``)."""
TOKENS_PER_SECOND = TOKENS_PER_PART / PART_SECONDS
"""12.6: prompt tokens per second of audio sent as full parts, markers included."""

STOP_TOKEN_IDS = [151665]
THINK_PREFILL = "<think>\n"
"""The assistant turn the request ends with: the model continues its reasoning."""
NO_THINK_PREFILL = "<think>\n\n</think>\n"
"""The training format for "no reasoning": an empty think block, then the answer."""
EOT = "<|EOT|>"
"""The end-of-turn token; it leaks into the text when special tokens are kept."""

TEXT_RESERVE_TOKENS = 300
"""Room kept for the system prompt, the instruction and the chat template."""
OUTPUT_TOKENS_PER_MINUTE = 250
"""Expected verbatim output per spoken minute."""
REASONING_TOKENS = 1500
"""Room kept in ``max_tokens`` for the reasoning before a verbatim answer."""
MIN_WINDOW_S = 10.0


def audio_part_tokens(seconds: float) -> int:
    """Prompt tokens one audio part costs (315 for a full 25 s part)."""
    # Multiplied before dividing: exact for whole seconds (25 * 12.52 is not 313.0).
    return math.ceil(seconds * PATCHES_PER_PART / PART_SECONDS) + PART_MARKERS


def text_tokens(text: str) -> int:
    """A conservative token count for text: a token per 3 UTF-8 bytes (one per CJK char)."""
    return math.ceil(len(text.encode("utf-8")) / 3)


def split_reasoning(text: str) -> tuple[str, str, bool]:
    """(thinking, answer, complete) from a reply that continued the ``<think>`` prefill.

    Without ``</think>`` the reply was cut by ``max_tokens``: all of it is reasoning and
    the answer is empty (``complete`` False), never a partial answer."""
    text = text.replace(EOT, "")
    if text.startswith(THINK_PREFILL):
        text = text[len(THINK_PREFILL) :]
    head, sep, tail = text.partition("</think>")
    if not sep:
        return text.strip(), "", False
    return head.strip(), tail.strip(), True


def max_window_seconds(
    max_model_len: int, max_tokens: int, *, verbatim: bool, thinking: bool
) -> float:
    """Longest window one request can carry: its parts, the text and ``max_tokens`` must
    fit ``max_model_len``, and a verbatim answer must fit ``max_tokens`` after the
    reasoning."""
    available = max_model_len - max_tokens - TEXT_RESERVE_TOKENS
    # Parts cut at quiet points are at least 20 s (all but the last), so a window of
    # W s has at most ceil(W/20) parts; each adds its markers and a rounding token.
    per_second = PATCHES_PER_SECOND + (PART_MARKERS + 1) / (PART_SECONDS * 0.8)
    seconds = available / per_second
    if verbatim:
        reasoning = REASONING_TOKENS if thinking else 0
        out_budget = max_tokens - reasoning - 100
        seconds = min(seconds, out_budget / OUTPUT_TOKENS_PER_MINUTE * 60)
    return max(MIN_WINDOW_S, math.floor(seconds))


def text_budget_chars(max_model_len: int) -> int:
    """Characters of text one call can take: one may be one token (CJK); room is kept
    for a long answer."""
    return max(2000, max_model_len - 4096 - TEXT_RESERVE_TOKENS)
