"""The stand-in's output on the wire: vLLM's SSE chunks, its error body, its token unit."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.responses import JSONResponse

_TOKEN = re.compile(r"\s*</think>\s*|<\|EOT\|>|\s*[^\s]{1,4}|\s+")

DONE = "data: [DONE]\n\n"


def tokenize(text: str) -> list[str]:
    """Pieces that join back to ``text``; the unit of ``max_tokens`` here."""
    return _TOKEN.findall(text)


def _data(chunk: dict[str, Any]) -> str:
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"


def sse_event(cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None) -> str:
    """One ``chat.completion.chunk`` with one choice, as vLLM streams it."""
    chunk = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return _data(chunk)


def usage_event(cid: str, created: int, model: str, prompt: int, completion: int) -> str:
    """The trailing chunk with no choices and the usage (``stream_options.include_usage``)."""
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    chunk = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage,
    }
    return _data(chunk)


def error_response(status: int, message: str, kind: str) -> JSONResponse:
    """vLLM's error body."""
    body = {"object": "error", "message": message, "type": kind, "param": None, "code": status}
    return JSONResponse(body, status_code=status)
