"""OpenAI's ``/v1/chat/completions`` with one ``input_audio`` part: the answer about the
recording (or, with our field ``mode``, another mode's result).

Every field OpenAI's request may carry that this route cannot honour is refused (400
naming it, as the client wrote it: ``messages[0].content[1].input_audio.data``) instead
of being silently dropped."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from stepaudio.api.auth import caller
from stepaudio.api.openai_audio import check_model, sse
from stepaudio.api.services import Services, get_services, model_label
from stepaudio.errors import InvalidParameter
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.result import ProcessResult

router = APIRouter(prefix="/v1", tags=["openai"])


class InputAudio(BaseModel):
    data: str
    format: str | None = None


class ContentPart(BaseModel):
    """One part of a message's content: the two kinds this route reads (an image or a
    file part is refused, not ignored)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["text", "input_audio"]
    text: str | None = None
    input_audio: InputAudio | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: list[ContentPart] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _text_as_part(cls, value: Any) -> Any:
        # A plain string is one text part; one shape keeps error paths free of pydantic's
        # union tags (``content.list[ContentPart].1``).
        return [{"type": "text", "text": value}] if isinstance(value, str) else value


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False


class ChatRequest(BaseModel):
    """OpenAI's chat request, as far as this route can honour it: any other field is an
    ``unknown_parameter`` (400)."""

    model_config = ConfigDict(extra="forbid")

    model: str = ""
    messages: list[ChatMessage]
    max_tokens: int | None = Field(None, ge=1, le=65536)
    max_completion_tokens: int | None = Field(None, ge=1, le=65536)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0, le=2)
    n: int = Field(1, ge=1, le=1)
    """One answer per request."""
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, max_length=256)
    """The caller's end user, as OpenAI takes it; not used."""
    mode: Mode = Mode.UNDERSTAND
    """Ours: what to do with the audio (default: answer the text about it)."""


def _audio_and_text(messages: list[ChatMessage]) -> tuple[bytes, str]:
    """The one recording and the user's text; errors name the part as the client did."""
    audio: list[bytes] = []
    texts: list[str] = []
    for i, message in enumerate(messages):
        if message.role != "user":
            continue
        for j, part in enumerate(message.content or []):
            where = f"messages[{i}].content[{j}]"
            if part.type == "text":
                texts.append(part.text or "")
                continue
            if part.input_audio is None:
                raise InvalidParameter(
                    f"The field '{where}.input_audio' is required.", param=f"{where}.input_audio"
                )
            if audio:
                raise InvalidParameter(
                    "Send one input_audio part; this service splits long audio itself.",
                    param=f"{where}.input_audio",
                )
            data = part.input_audio.data
            try:
                audio.append(base64.b64decode(data.split(",")[-1], validate=True))
            except ValueError as exc:
                raise InvalidParameter(
                    f"{where}.input_audio.data is not valid base64.",
                    param=f"{where}.input_audio.data",
                ) from exc
    if not audio:
        raise InvalidParameter("The request has no input_audio part.", param="messages")
    return audio[0], "\n".join(t for t in texts if t.strip())


def _usage(result: ProcessResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "total_tokens": result.usage.prompt_tokens + result.usage.completion_tokens,
    }


@router.post("/chat/completions")
async def chat_completions(
    request: Request,
    body: ChatRequest,
    services: Services = Depends(get_services),
    _who: str = Depends(caller),
):
    """Chat about one recording sent as an ``input_audio`` part."""
    if body.model:
        check_model(body.model, services)
    audio, text = _audio_and_text(body.messages)
    params = ProcessParams.from_user(
        mode=body.mode,
        question=text,
        instruction=text,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        repetition_penalty=body.repetition_penalty,
    )
    result = await services.process(request, _BytesUpload(audio), params, face="v1_chat")
    head = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "created": int(time.time()),
        "model": body.model or model_label(services),
    }
    message = {"role": "assistant", "content": result.answer}
    if result.thinking:
        message["reasoning_content"] = result.thinking
    if not body.stream:
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return {**head, "object": "chat.completion", "choices": [choice], "usage": _usage(result)}
    chunks: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": message, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    if body.stream_options is not None and body.stream_options.include_usage:
        # OpenAI's last chunk when asked: no choices, the request's usage.
        chunks.append({"choices": [], "usage": _usage(result)})

    async def events() -> AsyncIterator[str]:
        for chunk in chunks:
            yield sse({**head, "object": "chat.completion.chunk", **chunk})
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


class _BytesUpload:
    """Decoded ``input_audio`` bytes, readable like an ``UploadFile``."""

    def __init__(self, data: bytes):
        self._data = data
        self.filename = "input_audio"

    async def read(self, size: int = -1) -> bytes:
        chunk = self._data if size < 0 else self._data[:size]
        self._data = self._data[len(chunk) :]
        return chunk
