"""The stand-in's request checks: the Step-Audio wire protocol, as vLLM enforces it.

Every rule here is one a real Step-Audio-R1.1 vLLM server imposes or its model needs
(the rules ``engines/stepaudio/`` follows): parts of at most 25 s (refused beyond
29.98 s, where vLLM fails), WAV 16 kHz mono 16-bit as raw base64, the prefill flags, and
prompt + ``max_tokens`` within ``max_model_len`` (vLLM's 400 "maximum context length"
otherwise).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import wave
from dataclasses import dataclass
from typing import Any

import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.engines.stepaudio.wire import (
    HARD_PART_SECONDS,
    NO_THINK_PREFILL,
    PART_SECONDS,
    STOP_TOKEN_IDS,
    THINK_PREFILL,
    audio_part_tokens,
    text_tokens,
)

PREFILLS = (THINK_PREFILL, NO_THINK_PREFILL)


def prompt_tokens(audio_seconds: list[float], texts: list[str], n_messages: int) -> int:
    """The stand-in's prompt length: 313 patches per 25 s + 2 markers per part, a token
    per 3 UTF-8 bytes of text, 4 tokens of chat template per message."""
    audio = sum(audio_part_tokens(s) for s in audio_seconds)
    text = sum(text_tokens(t) for t in texts)
    return audio + text + 4 * n_messages


class Invalid(Exception):
    """A request vLLM would refuse; ``violation``: our client should never have sent it."""

    def __init__(self, status: int, message: str, violation: bool = True):
        super().__init__(message)
        self.status = status
        self.message = message
        self.violation = violation


@dataclass
class ParsedRequest:
    task: str
    pcm_parts: list[np.ndarray]
    part_seconds: list[float]
    user_text: str
    target_lang: str | None
    thinking: bool
    max_tokens: int
    prompt_tokens: int
    include_usage: bool
    stream: bool = True


_RULES: dict[str, Any] = {
    "stream": True,
    "continue_final_message": True,
    "add_generation_prompt": False,
    "skip_special_tokens": False,
    "stop_token_ids": STOP_TOKEN_IDS,
}


def parse_request(
    body: dict[str, Any],
    *,
    model: str,
    max_model_len: int,
    strict: bool,
    violations: list[str],
) -> ParsedRequest:
    """Check one chat request; raise :class:`Invalid` where vLLM answers an error.

    Problems vLLM lets through but the model handles badly (a part over 25 s) are
    appended to ``violations`` instead. ``strict=False`` drops the prefill rules, for
    clients of any OpenAI chat endpoint (the cascade)."""
    if body.get("model") != model:
        raise Invalid(404, f"The model `{body.get('model')}` does not exist.")
    messages = body["messages"]
    last = messages[-1]
    prefilled = last.get("role") == "assistant" and last.get("content") in PREFILLS
    if strict:
        for key, want in _RULES.items():
            if body.get(key) != want:
                raise Invalid(400, f"{key} must be {want!r}, got {body.get(key)!r}")
        if not prefilled:
            raise Invalid(400, f"last message must be the assistant prefill, got {last!r}")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise Invalid(400, f"max_tokens must be a positive integer, got {max_tokens!r}")
    texts: list[str] = []
    pcm_parts: list[np.ndarray] = []
    seconds: list[float] = []
    user_text = ""
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            if message.get("role") == "user":
                user_text += content
            continue
        for part in content:
            if part.get("type") == "text":
                texts.append(part["text"])
                user_text += part["text"]
            elif part.get("type") == "input_audio":
                pcm = check_wav(part["input_audio"])
                pcm_parts.append(pcm)
                seconds.append(pcm.size / SAMPLE_RATE)
            else:
                raise Invalid(400, f"unexpected content part {part.get('type')!r}")
    for s in seconds:
        if s > HARD_PART_SECONDS:
            raise Invalid(400, f"audio part of {s:.2f} s exceeds the encoder's 29.98 s")
        if s > PART_SECONDS + 0.01:
            violations.append(f"audio part of {s:.2f} s is over 25 s")
    prompt = prompt_tokens(seconds, texts, len(messages))
    if prompt + max_tokens > max_model_len:
        raise Invalid(
            400,
            f"This model's maximum context length is {max_model_len} tokens. "
            f"However, you requested {prompt + max_tokens} tokens ({prompt} in the "
            f"messages, {max_tokens} in the completion). Please reduce the length of "
            "the messages or completion.",
        )
    return ParsedRequest(
        task=task_of(user_text, bool(pcm_parts)),
        pcm_parts=pcm_parts,
        part_seconds=seconds,
        user_text=user_text,
        target_lang=target_lang(user_text),
        thinking=prefilled and last["content"] == PREFILLS[0],
        stream=bool(body.get("stream")),
        max_tokens=max_tokens,
        prompt_tokens=prompt,
        include_usage=not body.get("stream")
        or bool((body.get("stream_options") or {}).get("include_usage")),
    )


def check_wav(audio: dict[str, Any]) -> np.ndarray:
    """The samples of one ``input_audio`` part, which must be raw-base64 16 kHz mono WAV."""
    if audio.get("format") != "wav":
        raise Invalid(400, f"input_audio format must be 'wav', got {audio.get('format')!r}")
    data = audio.get("data", "")
    if data.startswith("data:"):
        raise Invalid(400, "input_audio data must be raw base64, not a data URI")
    try:
        raw = base64.b64decode(data, validate=True)
        with wave.open(io.BytesIO(raw)) as w:
            shape = (w.getnchannels(), w.getsampwidth(), w.getframerate())
            frames = w.readframes(w.getnframes())
    except (binascii.Error, wave.Error, EOFError) as exc:
        raise Invalid(400, f"input_audio is not a WAV file: {exc}") from exc
    if shape != (1, 2, SAMPLE_RATE):
        raise Invalid(400, f"WAV must be mono 16-bit 16 kHz, got (ch, width, rate)={shape}")
    return np.frombuffer(frames, dtype="<i2")


def task_of(text: str, has_audio: bool) -> str:
    """What the prompt asks for, guessed from its words (enough to answer plausibly)."""
    low = text.lower()
    if "translat" in low or "翻译" in text:
        return "translate"
    if has_audio and ("transcri" in low or "转写" in text or "记录" in text):
        return "asr"
    if "summar" in low or "总结" in text or "摘要" in text:
        return "summarize"
    return "understand" if has_audio else "answer"


def target_lang(text: str) -> str | None:
    match = re.search(r"(?:translate it to|into) ([^.\n]+)", text, re.IGNORECASE)
    return match.group(1).strip() if match else None
