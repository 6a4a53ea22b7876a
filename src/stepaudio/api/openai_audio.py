"""The OpenAI-compatible face: ``/v1/audio/transcriptions``, ``/v1/audio/translations``
and ``/v1/models`` (``/v1/chat/completions`` is ``openai_chat``): the official SDK works
unchanged against it.

A form field the routes cannot honour is refused (400 naming it) rather than silently
ignored: ``AudioForm`` and ``TranscriptionForm`` are the one statement of what each route
takes. The work itself is ``Services.process``/``stream``, as on every face.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stepaudio.api.forms import voice_names
from stepaudio.api.granularity import known_speakers, word_times
from stepaudio.api.services import Services, StreamBody, get_services, model_label
from stepaudio.errors import InvalidParameter, NotFound, StepAudioError
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.formats import Format, diarized_json, media_type, render, usage
from stepaudio.pipeline.result import ProcessResult
from stepaudio.service import Run
from stepaudio.text import join_texts

router = APIRouter(prefix="/v1", tags=["openai"])

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
TranscriptionFormat = Literal["json", "text", "srt", "verbose_json", "vtt", "diarized_json"]
"""Transcriptions also give OpenAI's ``diarized_json`` (segments with speakers)."""

_INCLUDES = ("include[]", "include")


def _unsupported(param: str, message: str) -> InvalidParameter:
    return InvalidParameter(message, param=param, code="unsupported_value")


class AudioForm(BaseModel):
    """What ``/v1/audio/translations`` takes, by the names clients send; any other field
    is an ``unknown_parameter`` (400 naming it). Declared once: FastAPI reads the form
    into it, the API docs show it."""

    model_config = ConfigDict(extra="forbid")

    file: UploadFile
    model: str = "whisper-1"
    language: str | None = None
    prompt: str | None = None
    response_format: ResponseFormat = "json"
    temperature: float | None = None
    stream: bool = False


class TranscriptionForm(AudioForm):
    """``/v1/audio/transcriptions``'s fields: translations' with word times, speakers and
    the fields OpenAI's SDK sends that can be honoured only in part (``include``,
    ``chunking_strategy``: values refused by name). Array fields come as the SDK sends
    them (``name[]``) and as curl users write them."""

    response_format: TranscriptionFormat = "json"  # type: ignore[assignment]
    timestamp_granularities: list[str] = Field([], alias="timestamp_granularities[]")
    timestamp_granularities_plain: list[str] = Field([], alias="timestamp_granularities")
    chunking_strategy: str | None = None
    include: list[str] = Field([], alias="include[]")
    include_plain: list[str] = Field([], alias="include")
    diarize: bool | None = None
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    known_speaker_names: list[str] = Field([], alias="known_speaker_names[]")
    known_speaker_names_plain: list[str] = Field([], alias="known_speaker_names")
    known_speaker_references: list[str] = Field([], alias="known_speaker_references[]")
    known_speaker_references_plain: list[str] = Field([], alias="known_speaker_references")
    voices: str | None = Field(None, max_length=8192)
    """Ours: known speakers from the key's voice library, comma-separated, or ``*``."""

    @model_validator(mode="before")
    @classmethod
    def _flattened_objects(cls, values: Any) -> Any:
        # The SDK's server_vad object, flattened (``chunking_strategy[type]``): settings
        # this service cannot honour, refused under the field's own name.
        if isinstance(values, dict) and any(
            str(k).startswith("chunking_strategy[") for k in values
        ):
            raise _unsupported("chunking_strategy", "chunking_strategy can only be 'auto'.")
        return values

    @model_validator(mode="after")
    def _honourable(self) -> TranscriptionForm:
        for name, asked in zip(_INCLUDES, (self.include, self.include_plain), strict=True):
            if asked:
                raise _unsupported(
                    name,
                    f"{name} cannot be honoured: Whisper gives no per-token logprobs here "
                    "(verbose_json carries each segment's avg_logprob).",
                )
        if self.chunking_strategy is not None and self.chunking_strategy != "auto":
            raise _unsupported(
                "chunking_strategy",
                "chunking_strategy can only be 'auto': this service cuts long audio at "
                "quiet points itself.",
            )
        return self

    def params(self) -> ProcessParams:
        fmt = self.response_format
        names = [*self.known_speaker_names, *self.known_speaker_names_plain]
        refs = [*self.known_speaker_references, *self.known_speaker_references_plain]
        granularities = [*self.timestamp_granularities, *self.timestamp_granularities_plain]
        return ProcessParams.from_user(
            mode=Mode.ASR,
            language=self.language,
            prompt=self.prompt,
            temperature=self.temperature,
            word_timestamps=word_times(granularities, fmt),
            # Known speakers make no sense without speakers: asking for them diarizes.
            diarize=self.diarize or fmt == "diarized_json" or bool(names) or None,
            num_speakers=self.num_speakers,
            min_speakers=self.min_speakers,
            max_speakers=self.max_speakers,
            known_speakers=known_speakers(names, refs) or None,
            voices=voice_names(self.voices),
        )


def _formatted(result: ProcessResult, fmt: TranscriptionFormat) -> Response:
    # OpenAI's "json" is its small transcription object, not our whole result.
    chosen = Format.OPENAI_JSON if fmt == "json" else Format(fmt)
    return Response(render(result, chosen), media_type=media_type(chosen))


_DONE = "data: [DONE]\n\n"


def sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _on_v1(exc: StepAudioError) -> StepAudioError:
    """``exc`` (changed in place) with its ``param`` as the client named it: the upload is
    the form's ``file`` here, ``audio`` on the seed's routes."""
    if exc.param == "audio":
        exc.param = "file"
    return exc


def _v1_stream(params: ProcessParams) -> StreamBody:
    async def body(run: Run) -> AsyncIterator[str]:
        """``transcript.text.delta`` events in order as speech is heard (a chunk at a
        time on the embedded engine) or windows finish, then ``.done``.

        The deltas are the final text's own pieces (``text.join_texts``: no space between
        CJK windows), so concatenated they equal the ``done`` text in every language: a
        window's own text adds what its heard pieces did not say. (A window decoded again
        after a loop says other words than its pieces; its deltas stand, ``done`` has the
        whole text.)"""
        joined = ""
        pieces = ""  # the current window's heard text, as sent
        async for event in run.events():
            if isinstance(event, ProcessResult):
                if params.diarize:
                    # Speakers are known once the whole recording is analysed: its
                    # segments come as OpenAI's diarized stream has them.
                    for segment in diarized_json(event)["segments"]:
                        yield sse(segment)
                done: dict[str, Any] = {"type": "transcript.text.done", "text": event.answer}
                if event.mode is not Mode.TRANSLATE:
                    done["usage"] = stream_usage(event)
                yield sse(done)
            elif event.output is not None:
                text = event.output.text
                if event.heard:
                    if params.mode is Mode.TRANSLATE:
                        continue  # what was said, not yet the translation
                    pieces = join_texts([pieces, text])
                elif pieces:
                    # The window: only what its pieces have not said.
                    text = text[len(pieces) :] if text.startswith(pieces) else ""
                    pieces = ""
                longer = join_texts([joined, text])
                delta, joined = longer[len(joined) :], longer
                if delta:
                    yield sse({"type": "transcript.text.delta", "delta": delta})
        yield _DONE

    return body


def _v1_error(exc: StepAudioError) -> str:
    return sse({"type": "error", "error": _on_v1(exc).to_dict()}) + _DONE


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


OPENAI_MODELS = (
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-transcribe-diarize",
    "gpt-transcribe",
)
"""OpenAI's transcription models, what its clients send by default (the diarizing one
with ``known_speaker_names[]``): taken as names of this service's engine."""


def accepted_models(services: Services) -> list[str]:
    """The ``model`` names the audio routes take, all served by this service's engines:
    the name it reports, every configured backend's model, and OpenAI's transcription
    models (``OPENAI_MODELS``). ``GET /v1/models`` lists exactly these."""
    names = [model_label(services), *(b.model for b in services.settings.all_backends())]
    return list(dict.fromkeys([*names, *OPENAI_MODELS]))


def check_model(model: str, services: Services, *, translation: bool = False) -> None:
    """404 for a model this service does not serve; OpenAI's translations take only
    ``whisper-1`` of its models, and so do ours."""
    refused = translation and model in OPENAI_MODELS and model != "whisper-1"
    if refused or model not in accepted_models(services):
        raise NotFound(
            f"The model '{model}' does not exist here; GET /v1/models lists those that do.",
            param="model",
            code="model_not_found",
        )


async def _answered(
    request: Request,
    services: Services,
    form: AudioForm,
    params: ProcessParams,
    face: str,
) -> Response:
    try:
        if form.stream:
            return await services.stream(
                request,
                form.file,
                params,
                face=face,
                body=_v1_stream(params),
                on_error=_v1_error,
            )
        result = await services.process(request, form.file, params, face=face)
    except StepAudioError as exc:
        raise _on_v1(exc) from None
    return _formatted(result, form.response_format)


@router.post("/audio/transcriptions")
async def transcriptions(
    request: Request,
    form: Annotated[TranscriptionForm, Form()],
    services: Services = Depends(get_services),
):
    """Verbatim transcript of the file, any length; with ``timestamp_granularities[]=word``
    (verbose_json) its words' times, with ``diarize`` or ``diarized_json`` its speakers."""
    check_model(form.model, services)
    return await _answered(request, services, form, form.params(), "v1_transcriptions")


@router.post("/audio/translations")
async def translations(
    request: Request,
    form: Annotated[AudioForm, Form()],
    services: Services = Depends(get_services),
):
    """The speech translated into English, as OpenAI's endpoint does."""
    check_model(form.model, services, translation=True)
    params = ProcessParams.from_user(
        mode=Mode.TRANSLATE,
        target_lang="English",
        language=form.language,
        prompt=form.prompt,
        temperature=form.temperature,
    )
    return await _answered(request, services, form, params, "v1_translations")


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
