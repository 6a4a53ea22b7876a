"""The request body of a Step-Audio-R1.1 call, built exactly as StepFun's own client
builds it: WAV 16 kHz mono parts of at most 25 s cut at quiet points, the ``<think>\\n``
prefill continued with ``continue_final_message``, the stop token, special tokens kept,
SSE streaming. The audio is never copied into one large string (see ``AudioPart``).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from stepaudio.audio.cut import plan_cuts
from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.audio.wav import encode_wav
from stepaudio.engines import prompts
from stepaudio.engines.stepaudio.wire import (
    NO_THINK_PREFILL,
    PART_SECONDS,
    STOP_TOKEN_IDS,
    THINK_PREFILL,
    audio_part_tokens,
)
from stepaudio.params import Mode, ProcessParams

# Chinese variants of the audio prompts (the model's training prompts are Chinese).
_ZH_SYSTEM = {
    Mode.ASR: "请记录下你所听到的语音内容。",
    Mode.S2T: "请记录下你所听到的语音内容。",
    Mode.TRANSLATE: "你是一名专业的口语翻译。",
    Mode.SUMMARIZE: "你擅长总结音频内容，请给出简洁的摘要。",
    Mode.UNDERSTAND: "你擅长理解音频内容，请回答关于音频的问题。",
}


def _is_zh(params: ProcessParams) -> bool:
    return bool(params.language and params.language.lower().startswith("zh"))


def audio_messages(mode: Mode, params: ProcessParams) -> tuple[str, str]:
    """System prompt and instruction for ``mode``; Chinese wording for Chinese audio."""
    instruction = prompts.audio_instruction(mode, params)
    if _is_zh(params):
        if mode in (Mode.ASR, Mode.S2T):
            instruction = "请逐字转写这段语音，只输出转写内容。"
        elif mode is Mode.SUMMARIZE:
            instruction = "请用音频所用的语言简要总结这段音频。"
            if params.instruction:
                instruction += "\n" + params.instruction
        return _ZH_SYSTEM[mode], instruction
    if mode is Mode.UNDERSTAND:
        instruction += "\nAnswer in the language spoken in the audio."
    return prompts.AUDIO_SYSTEM[mode], instruction


@dataclass(frozen=True, eq=False)
class AudioPart:
    """An ``input_audio`` part whose WAV is already base64-encoded (ASCII bytes).

    A 90 s window is ~3.8 MB of base64; held as a str in the message dict and then
    serialised whole by ``json=``, it existed three times over (str, JSON str, encoded
    bytes) for every request in flight. Kept as bytes and spliced into the body by
    ``json_pieces``, it exists once.
    """

    data: bytes

    def json_pieces(self) -> list[bytes]:
        # base64 needs no JSON escaping ("+", "/", "=" are plain in a JSON string).
        return [b'{"type":"input_audio","input_audio":{"data":"', self.data, b'","format":"wav"}}']


def audio_parts(pcm: np.ndarray) -> tuple[list[AudioPart], int]:
    """A window cut at quiet points into parts of at most 25 s, and their prompt tokens."""
    parts: list[AudioPart] = []
    tokens = 0
    for span in plan_cuts(pcm, SAMPLE_RATE, PART_SECONDS):
        piece = pcm[round(span.start * SAMPLE_RATE) : round(span.end * SAMPLE_RATE)]
        if piece.size == 0:
            continue
        tokens += audio_part_tokens(piece.size / SAMPLE_RATE)
        # Only the base64 bytes are kept, one part at a time: the WAV is dropped at
        # once and no str/JSON copy of the audio is ever made.
        parts.append(AudioPart(base64.b64encode(encode_wav(np.asarray(piece)))))
    return parts, tokens


def chat_body(
    model: str, messages: list[dict[str, Any]], params: ProcessParams, *, max_tokens: int
) -> dict[str, Any]:
    """The body without its assistant prefill (``with_prefill`` adds it per attempt)."""
    return {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": params.effective_temperature(),
        "top_p": params.top_p,
        "repetition_penalty": params.repetition_penalty,
        "stop_token_ids": STOP_TOKEN_IDS,
        "skip_special_tokens": False,
        "continue_final_message": True,
        "add_generation_prompt": False,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def with_prefill(
    body: dict[str, Any], messages: list[dict[str, Any]], *, thinking: bool
) -> dict[str, Any]:
    """``body`` whose messages end with the assistant prefill the model continues."""
    prefill = THINK_PREFILL if thinking else NO_THINK_PREFILL
    return {**body, "messages": [*messages, {"role": "assistant", "content": prefill}]}


def json_pieces(body: Any) -> list[bytes]:
    """``body`` as UTF-8 JSON, in pieces whose concatenation is the whole document.

    Serialised as httpx's ``json=`` does (compact, not ASCII-escaped); every AudioPart is
    spliced in as its own pieces, so the audio is never copied into one large string.
    """
    marker = f"\x00audio-part-{uuid.uuid4().hex}\x00"
    audio: list[AudioPart] = []

    def placeholder(obj: object) -> str:
        if isinstance(obj, AudioPart):
            audio.append(obj)
            return marker
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    text = json.dumps(
        body, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=placeholder
    )
    # The marker comes out as one quoted JSON string; the random token keeps any text of
    # the request from ever matching it.
    quoted = json.dumps(marker)
    between = text.split(quoted)
    if len(between) != len(audio) + 1:
        raise RuntimeError("an audio part's marker was not found once in the body")
    out: list[bytes] = [between[0].encode("utf-8")]
    for part, rest in zip(audio, between[1:], strict=True):
        out += part.json_pieces()
        out.append(rest.encode("utf-8"))
    return out


async def aiter_pieces(chunks: list[bytes]) -> AsyncIterator[bytes]:
    """The body for httpx's AsyncClient, which only streams async iterables."""
    for chunk in chunks:
        yield chunk
