"""Reading vLLM's SSE stream of chat-completion chunks into one reply.

A stream is complete only when it ends with ``data: [DONE]`` after a ``finish_reason``;
anything else (an error event, a stream that stops early) is a ``BackendError``, never a
short answer. Transport failures while reading are left to ``engines.http.map_errors``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from stepaudio.errors import BackendError


@dataclass
class StreamResult:
    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


async def sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The payloads of an SSE stream's ``data:`` lines."""
    async for line in lines:
        if line.startswith("data:"):
            yield line[5:].strip()


async def read_completion(url: str, lines: AsyncIterator[str]) -> StreamResult:
    """The reply streamed as ``lines`` (malformed JSON raises ``json.JSONDecodeError``)."""
    result = StreamResult()
    pieces: list[str] = []
    done = False
    async for data in sse_data(lines):
        if data == "[DONE]":
            done = True
            break
        chunk = json.loads(data)
        if "error" in chunk and not chunk.get("choices"):
            raise BackendError(f"{url} failed mid-stream: {chunk['error']}")
        for choice in chunk.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                pieces.append(content)
            if choice.get("finish_reason"):
                result.finish_reason = choice["finish_reason"]
        if chunk.get("usage"):
            result.prompt_tokens = chunk["usage"].get("prompt_tokens") or 0
            result.completion_tokens = chunk["usage"].get("completion_tokens") or 0
    if not done or result.finish_reason is None:
        raise BackendError(f"{url} ended the stream before it finished.", code="stream_cut")
    result.text = "".join(pieces)
    return result
