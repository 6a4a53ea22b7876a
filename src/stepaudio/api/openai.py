"""The OpenAI-compatible face: ``/v1/audio/transcriptions``, ``/v1/audio/translations``,
``/v1/chat/completions`` with ``input_audio``, ``/v1/models``: the official SDK works
unchanged against it.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, aclosing
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from stepaudio.api.auth import caller
from stepaudio.api.disconnect import unless_disconnected
from stepaudio.api.services import Services, get_services, model_label
from stepaudio.api.uploads import StoredUpload, in_client_terms, temporary_upload
from stepaudio.errors import InvalidParameter, NotFound, StepAudioError
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.formats import Format, media_type, render, usage
from stepaudio.pipeline.result import ProcessResult
from stepaudio.text import join_texts

router = APIRouter(prefix="/v1", tags=["openai"])

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]


def _formatted(result: ProcessResult, fmt: ResponseFormat) -> Response:
    # OpenAI's "json" is its small transcription object, not our whole result.
    chosen = Format.OPENAI_JSON if fmt == "json" else Format(fmt)
    return Response(render(result, chosen), media_type=media_type(chosen))


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _on_v1(exc: StepAudioError) -> StepAudioError:
    """``exc`` (changed in place) with its ``param`` as the client named it: the upload is
    the form's ``file`` here, ``audio`` on the seed's routes."""
    if exc.param == "audio":
        exc.param = "file"
    return exc


async def _streamed(
    services: Services, stored: StoredUpload, params: ProcessParams, upload: AsyncExitStack
) -> AsyncIterator[str]:
    """``transcript.text.delta`` events in order as windows finish, then ``.done``;
    ``upload`` (the stored file) is closed when the stream ends.

    The deltas are the final text's own pieces (``text.join_texts``: no space between
    CJK windows), so concatenated they equal the ``done`` text in every language."""
    async with upload:
        try:
            async with (
                services.admitted(params.mode.value),
                # Closed at once if the client goes away: that cancels the work.
                aclosing(services.pipeline.events(stored.path, params)) as events,
            ):
                joined = ""
                async for event in events:
                    if isinstance(event, ProcessResult):
                        done: dict[str, Any] = {
                            "type": "transcript.text.done",
                            "text": event.answer,
                        }
                        if event.mode is not Mode.TRANSLATE:
                            done["usage"] = usage(event)
                        yield _sse(done)
                    elif event.output is not None:
                        longer = join_texts([joined, event.output.text])
                        delta, joined = longer[len(joined) :], longer
                        if delta:
                            yield _sse({"type": "transcript.text.delta", "delta": delta})
        except StepAudioError as exc:
            error = _on_v1(in_client_terms(exc, stored))
            yield _sse({"type": "error", "error": error.to_dict()})
    yield "data: [DONE]\n\n"


def accepted_models(services: Services) -> list[str]:
    """The ``model`` names the audio routes take, all served by this service's engines:
    the name it reports, every configured backend's model, and OpenAI's ``whisper-1``
    (what clients send by default). ``GET /v1/models`` lists exactly these."""
    names = [model_label(services), *(b.model for b in services.settings.all_backends())]
    return list(dict.fromkeys([*names, "whisper-1"]))


def _check_model(model: str, services: Services) -> None:
    if model not in accepted_models(services):
        raise NotFound(
            f"The model '{model}' does not exist here; GET /v1/models lists those that do.",
            param="model",
            code="model_not_found",
        )


async def _audio_endpoint(
    request: Request,
    services: Services,
    file: UploadFile,
    params: ProcessParams,
    fmt: ResponseFormat,
    stream: bool,
) -> Response:
    try:
        return await _answered(request, services, file, params, fmt, stream)
    except StepAudioError as exc:
        _on_v1(exc)
        raise


async def _answered(
    request: Request,
    services: Services,
    file: UploadFile,
    params: ProcessParams,
    fmt: ResponseFormat,
    stream: bool,
) -> Response:
    settings = services.settings
    async with AsyncExitStack() as stack:
        stored = await stack.enter_async_context(
            temporary_upload(file, settings.data_dir / "uploads", settings.max_upload_bytes)
        )
        if stream:
            # Refused here (a status, not an event) if it is no audio or too long.
            await services.pipeline.probe(stored.path)
            # From here the stream owns the file: removed when it ends.
            return StreamingResponse(
                _streamed(services, stored, params, stack.pop_all()),
                media_type="text/event-stream",
            )
        async with services.admitted(params.mode.value):
            result = await unless_disconnected(
                request, services.pipeline.process(stored.path, params)
            )
    return _formatted(result, fmt)


@router.post("/audio/transcriptions")
async def transcriptions(
    request: Request,
    file: UploadFile = File(...),
    model: str = Form("whisper-1"),
    language: str | None = Form(None),
    prompt: str | None = Form(None),
    response_format: ResponseFormat = Form("json"),
    temperature: float | None = Form(None),
    stream: bool = Form(False),
    services: Services = Depends(get_services),
    _who: str = Depends(caller),
):
    """Verbatim transcript of the file, any length."""
    _check_model(model, services)
    params = ProcessParams.from_user(mode=Mode.ASR, language=language, temperature=temperature)
    return await _audio_endpoint(request, services, file, params, response_format, stream)


@router.post("/audio/translations")
async def translations(
    request: Request,
    file: UploadFile = File(...),
    model: str = Form("whisper-1"),
    prompt: str | None = Form(None),
    response_format: ResponseFormat = Form("json"),
    temperature: float | None = Form(None),
    stream: bool = Form(False),
    services: Services = Depends(get_services),
    _who: str = Depends(caller),
):
    """The speech translated into English, as OpenAI's endpoint does."""
    _check_model(model, services)
    params = ProcessParams.from_user(
        mode=Mode.TRANSLATE, target_lang="English", temperature=temperature
    )
    return await _audio_endpoint(request, services, file, params, response_format, stream)


@router.get("/models")
async def models(services: Services = Depends(get_services)) -> dict[str, Any]:
    """Exactly the names the audio routes accept (``accepted_models``)."""
    return {
        "object": "list",
        "data": [
            {
                "id": name,
                "object": "model",
                "created": int(services.started_at),
                "owned_by": "stepaudio",
            }
            for name in accepted_models(services)
        ],
    }


class InputAudio(BaseModel):
    data: str
    format: str | None = None


class ContentPart(BaseModel):
    """One part of a message's content: text or ``input_audio`` (others are ignored)."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None
    input_audio: InputAudio | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[ContentPart] | None = None


class ChatRequest(BaseModel):
    """The part of OpenAI's chat request that matters here; other fields are accepted."""

    model_config = ConfigDict(extra="allow")

    model: str = ""
    messages: list[ChatMessage]
    max_tokens: int | None = Field(None, ge=1, le=65536)
    max_completion_tokens: int | None = Field(None, ge=1, le=65536)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stream: bool = False
    mode: Mode = Mode.UNDERSTAND
    """Ours: what to do with the audio (default: answer the text about it)."""


def _audio_and_text(messages: list[ChatMessage]) -> tuple[list[bytes], str]:
    audio: list[bytes] = []
    texts: list[str] = []
    for message in messages:
        if message.role != "user":
            continue
        if isinstance(message.content, str):
            texts.append(message.content)
            continue
        for part in message.content or []:
            if part.type == "text" and part.text:
                texts.append(part.text)
            elif part.type == "input_audio" and part.input_audio is not None:
                data = part.input_audio.data
                try:
                    audio.append(base64.b64decode(data.split(",")[-1], validate=True))
                except ValueError as exc:
                    raise InvalidParameter(
                        "input_audio.data is not valid base64.", param="messages"
                    ) from exc
    if not audio:
        raise InvalidParameter("The request has no input_audio part.", param="messages")
    if len(audio) > 1:
        raise InvalidParameter(
            "Send one input_audio part; this service splits long audio itself.",
            param="messages",
        )
    return audio, "\n".join(t for t in texts if t.strip())


@router.post("/chat/completions")
async def chat_completions(
    request: Request,
    body: ChatRequest,
    services: Services = Depends(get_services),
    _who: str = Depends(caller),
):
    """Chat about one recording sent as an ``input_audio`` part."""
    audio, text = _audio_and_text(body.messages)
    settings = services.settings
    params = ProcessParams.from_user(
        mode=body.mode,
        question=text,
        instruction=text,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
    )
    async with (
        temporary_upload(
            _BytesUpload(audio[0]), settings.data_dir / "uploads", settings.max_upload_bytes
        ) as stored,
        services.admitted(params.mode.value),
    ):
        result = await unless_disconnected(request, services.pipeline.process(stored.path, params))
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    message = {"role": "assistant", "content": result.answer}
    if result.thinking:
        message["reasoning_content"] = result.thinking
    usage = {
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "total_tokens": result.usage.prompt_tokens + result.usage.completion_tokens,
    }
    if body.stream:
        chunks = [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": result.answer},
                "finish_reason": None,
            },
            {"index": 0, "delta": {}, "finish_reason": "stop"},
        ]

        async def events() -> AsyncIterator[str]:
            for choice in chunks:
                yield _sse(
                    {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": body.model or model_label(services),
                        "choices": [choice],
                    }
                )
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": body.model or model_label(services),
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": usage,
    }


class _BytesUpload:
    """Decoded ``input_audio`` bytes, readable like an ``UploadFile``."""

    def __init__(self, data: bytes):
        self._data = data
        self.filename = "input_audio"

    async def read(self, size: int = -1) -> bytes:
        chunk = self._data if size < 0 else self._data[:size]
        self._data = self._data[len(chunk) :]
        return chunk
