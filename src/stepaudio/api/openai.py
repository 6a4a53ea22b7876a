"""The OpenAI-compatible face: ``/v1/audio/transcriptions``, ``/v1/audio/translations``
and ``/v1/models`` (``/v1/chat/completions`` is ``openai_chat``): the official SDK works
unchanged against it.

A form field the routes cannot honour is refused (400 naming it) rather than silently
ignored: ``AUDIO_FIELDS`` is the one list of what each route takes.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, aclosing
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response, StreamingResponse

from stepaudio.api.auth import caller
from stepaudio.api.disconnect import unless_disconnected
from stepaudio.api.granularity import known_speakers, word_times
from stepaudio.api.services import Services, get_services, model_label
from stepaudio.api.uploads import StoredUpload, in_client_terms, temporary_upload
from stepaudio.errors import InvalidParameter, NotFound, StepAudioError
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.formats import Format, diarized_json, media_type, render, usage
from stepaudio.pipeline.result import ProcessResult
from stepaudio.text import join_texts

router = APIRouter(prefix="/v1", tags=["openai"])

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
TranscriptionFormat = Literal["json", "text", "srt", "verbose_json", "vtt", "diarized_json"]
"""Transcriptions also give OpenAI's ``diarized_json`` (segments with speakers)."""

_SHARED_FIELDS = frozenset(
    {"file", "model", "language", "prompt", "response_format", "temperature", "stream"}
)
AUDIO_FIELDS: dict[str, frozenset[str]] = {
    "transcriptions": _SHARED_FIELDS
    | {
        # Array fields as the SDK sends them (``name[]``) and as curl users write them.
        "timestamp_granularities[]",
        "timestamp_granularities",
        "chunking_strategy",
        "include[]",
        "include",
        "diarize",
        "num_speakers",
        "min_speakers",
        "max_speakers",
        "known_speaker_names[]",
        "known_speaker_names",
        "known_speaker_references[]",
        "known_speaker_references",
    },
    "translations": _SHARED_FIELDS,
}
"""Every form field each ``/v1/audio/*`` route takes, by the name the client sends; any
other field is an ``unknown_parameter`` (400 naming it). Add a route's new field here."""

_INCLUDES = ("include[]", "include")


def _unsupported(param: str, message: str) -> InvalidParameter:
    return InvalidParameter(message, param=param, code="unsupported_value")


def _check_values(form: Any) -> None:
    """Accepted fields whose values this service can only partly honour."""
    for name in _INCLUDES:
        if form.getlist(name):
            raise _unsupported(
                name,
                f"{name} cannot be honoured: Whisper gives no per-token logprobs here "
                "(verbose_json carries each segment's avg_logprob).",
            )
    strategy = form.get("chunking_strategy")
    if strategy is not None and strategy != "auto":
        raise _unsupported(
            "chunking_strategy",
            "chunking_strategy can only be 'auto': this service cuts long audio at quiet "
            "points itself.",
        )


def _fields_of(route: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency refusing, for ``route``, the fields it does not take (``AUDIO_FIELDS``)
    and the values it cannot honour."""
    accepted = AUDIO_FIELDS[route]

    async def check(request: Request) -> None:
        # The form FastAPI has already parsed for the route (Starlette caches it).
        form = await request.form()
        for name in form:
            if name.startswith("chunking_strategy["):
                # The SDK's server_vad object, flattened: settings we cannot honour.
                raise _unsupported("chunking_strategy", "chunking_strategy can only be 'auto'.")
            if name not in accepted:
                raise InvalidParameter(
                    f"Unknown parameter: '{name[:64]}'. /v1/audio/{route} takes "
                    f"{', '.join(sorted(accepted))}.",
                    param=name[:64],
                    code="unknown_parameter",
                )
        _check_values(form)

    return check


def _formatted(result: ProcessResult, fmt: TranscriptionFormat) -> Response:
    # OpenAI's "json" is its small transcription object, not our whole result.
    chosen = Format.OPENAI_JSON if fmt == "json" else Format(fmt)
    return Response(render(result, chosen), media_type=media_type(chosen))


def sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _on_v1(exc: StepAudioError) -> StepAudioError:
    """``exc`` (changed in place) with its ``param`` as the client named it: the upload is
    the form's ``file`` here, ``audio`` on the seed's routes."""
    if exc.param == "audio":
        exc.param = "file"
    return exc


async def _streamed(
    services: Services,
    stored: StoredUpload,
    params: ProcessParams,
    upload: AsyncExitStack,
    owner: str,
) -> AsyncIterator[str]:
    """``transcript.text.delta`` events in order as windows finish, then ``.done``;
    ``upload`` (the stored file) is closed when the stream ends.

    The deltas are the final text's own pieces (``text.join_texts``: no space between
    CJK windows), so concatenated they equal the ``done`` text in every language."""
    async with upload:
        try:
            async with (
                services.admitted(params.mode.value, owner),
                # Closed at once if the client goes away: that cancels the work.
                aclosing(services.pipeline.events(stored.path, params)) as events,
            ):
                joined = ""
                async for event in events:
                    if isinstance(event, ProcessResult):
                        if params.diarize:
                            # Speakers are known once the whole recording is analysed:
                            # its segments come as OpenAI's diarized stream has them.
                            for segment in diarized_json(event)["segments"]:
                                yield sse(segment)
                        done: dict[str, Any] = {
                            "type": "transcript.text.done",
                            "text": event.answer,
                        }
                        if event.mode is not Mode.TRANSLATE:
                            done["usage"] = stream_usage(event)
                        yield sse(done)
                    elif event.output is not None:
                        longer = join_texts([joined, event.output.text])
                        delta, joined = longer[len(joined) :], longer
                        if delta:
                            yield sse({"type": "transcript.text.delta", "delta": delta})
        except StepAudioError as exc:
            error = _on_v1(in_client_terms(exc, stored))
            yield sse({"type": "error", "error": error.to_dict()})
    yield "data: [DONE]\n\n"


def stream_usage(result: ProcessResult) -> dict[str, Any]:
    """The ``done`` event's usage. The SDK declares only OpenAI's token-billed kind there
    (``type: tokens``), so it is that, with the audio as input: the engine's prompt
    tokens where it counts them (Step-Audio), else Whisper's encoder positions (50 per
    second); output: the tokens the model wrote. ``seconds`` adds the billed duration that
    json and verbose_json report."""
    counted = result.usage.prompt_tokens
    taken = counted or math.ceil(result.usage.audio_seconds * 50)
    written = result.usage.completion_tokens or sum(len(s.tokens or []) for s in result.segments)
    out: dict[str, Any] = {
        "type": "tokens",
        "input_tokens": taken,
        "output_tokens": written,
        "total_tokens": taken + written,
        "seconds": usage(result)["seconds"],
    }
    if not counted:
        # All audio for Whisper; an engine's own count also holds its prompt's text.
        out["input_token_details"] = {"audio_tokens": taken, "text_tokens": 0}
    return out


def accepted_models(services: Services) -> list[str]:
    """The ``model`` names the audio routes take, all served by this service's engines:
    the name it reports, every configured backend's model, and OpenAI's ``whisper-1``
    (what clients send by default). ``GET /v1/models`` lists exactly these."""
    names = [model_label(services), *(b.model for b in services.settings.all_backends())]
    return list(dict.fromkeys([*names, "whisper-1"]))


def check_model(model: str, services: Services) -> None:
    if model not in accepted_models(services):
        raise NotFound(
            f"The model '{model}' does not exist here; GET /v1/models lists those that do.",
            param="model",
            code="model_not_found",
        )


async def _audio_endpoint(
    request: Request,
    services: Services,
    owner: str,
    file: UploadFile,
    params: ProcessParams,
    fmt: TranscriptionFormat,
    stream: bool,
) -> Response:
    try:
        return await _answered(request, services, owner, file, params, fmt, stream)
    except StepAudioError as exc:
        _on_v1(exc)
        raise


async def _answered(
    request: Request,
    services: Services,
    owner: str,
    file: UploadFile,
    params: ProcessParams,
    fmt: TranscriptionFormat,
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
                _streamed(services, stored, params, stack.pop_all(), owner),
                media_type="text/event-stream",
            )
        async with services.admitted(params.mode.value, owner):
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
    response_format: TranscriptionFormat = Form("json"),
    temperature: float | None = Form(None),
    stream: bool = Form(False),
    timestamp_granularities: list[str] = Form([], alias="timestamp_granularities[]"),
    granularities_plain: list[str] = Form([], alias="timestamp_granularities"),
    diarize: bool | None = Form(None),
    num_speakers: int | None = Form(None),
    min_speakers: int | None = Form(None),
    max_speakers: int | None = Form(None),
    speaker_names: list[str] = Form([], alias="known_speaker_names[]"),
    speaker_names_plain: list[str] = Form([], alias="known_speaker_names"),
    speaker_refs: list[str] = Form([], alias="known_speaker_references[]"),
    speaker_refs_plain: list[str] = Form([], alias="known_speaker_references"),
    services: Services = Depends(get_services),
    who: str = Depends(caller),
    _fields: None = Depends(_fields_of("transcriptions")),
):
    """Verbatim transcript of the file, any length; with ``timestamp_granularities[]=word``
    (verbose_json) its words' times, with ``diarize`` or ``diarized_json`` its speakers."""
    check_model(model, services)
    words = word_times([*timestamp_granularities, *granularities_plain], response_format)
    params = ProcessParams.from_user(
        mode=Mode.ASR,
        language=language,
        prompt=prompt,
        temperature=temperature,
        word_timestamps=words,
        # Known speakers make no sense without speakers: asking for them diarizes.
        diarize=diarize
        or response_format == "diarized_json"
        or bool(speaker_names or speaker_names_plain)
        or None,
        num_speakers=num_speakers,
        min_speakers=min_speakers,
        max_speakers=max_speakers,
        known_speakers=known_speakers(
            [*speaker_names, *speaker_names_plain], [*speaker_refs, *speaker_refs_plain]
        )
        or None,
    )
    return await _audio_endpoint(
        request, services, who, file, params, response_format, stream
    )


@router.post("/audio/translations")
async def translations(
    request: Request,
    file: UploadFile = File(...),
    model: str = Form("whisper-1"),
    language: str | None = Form(None, description="Ours: the spoken language, if known."),
    prompt: str | None = Form(None),
    response_format: ResponseFormat = Form("json"),
    temperature: float | None = Form(None),
    stream: bool = Form(False),
    services: Services = Depends(get_services),
    who: str = Depends(caller),
    _fields: None = Depends(_fields_of("translations")),
):
    """The speech translated into English, as OpenAI's endpoint does."""
    check_model(model, services)
    params = ProcessParams.from_user(
        mode=Mode.TRANSLATE,
        target_lang="English",
        language=language,
        prompt=prompt,
        temperature=temperature,
    )
    return await _audio_endpoint(
        request, services, who, file, params, response_format, stream
    )


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
