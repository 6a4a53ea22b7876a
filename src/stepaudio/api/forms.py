"""The seed's multipart fields turned into ``ProcessParams``.

Every field is optional here: what the caller leaves out is filled by the model's own
defaults (``params.py``), so they are stated once; the field descriptions come from the
model too, with its default, for the API docs."""

from __future__ import annotations

from typing import Any

from fastapi import Form

from stepaudio.params import Mode, ProcessParams


def _field(name: str) -> Any:
    info = ProcessParams.model_fields[name]
    default = info.get_default()
    shown = getattr(default, "value", default)
    suffix = "" if default is None else f" (default: {shown})"
    return Form(None, description=f"{info.description or ''}{suffix}".strip())


def process_params(
    mode: Mode | None = _field("mode"),
    instruction: str | None = _field("instruction"),
    question: str | None = _field("question"),
    target_lang: str | None = _field("target_lang"),
    language: str | None = _field("language"),
    max_tokens: int | None = _field("max_tokens"),
    temperature: float | None = _field("temperature"),
    top_p: float | None = _field("top_p"),
    repetition_penalty: float | None = _field("repetition_penalty"),
    thinking: bool | None = _field("thinking"),
    segment_duration: float | None = _field("segment_duration"),
    parallel: int | None = _field("parallel"),
    word_timestamps: bool | None = _field("word_timestamps"),
    diarize: bool | None = _field("diarize"),
    num_speakers: int | None = _field("num_speakers"),
    min_speakers: int | None = _field("min_speakers"),
    max_speakers: int | None = _field("max_speakers"),
    voices: str | None = Form(
        None,
        description="Known speakers from your voice library (/api/voices), comma-separated "
        "names, or * for all of them; implies diarize",
        max_length=8192,
    ),
) -> ProcessParams:
    return ProcessParams.from_user(
        mode=mode,
        instruction=instruction,
        question=question,
        target_lang=target_lang,
        language=language,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        thinking=thinking,
        segment_duration=segment_duration,
        parallel=parallel,
        word_timestamps=word_timestamps,
        diarize=diarize,
        num_speakers=num_speakers,
        min_speakers=min_speakers,
        max_speakers=max_speakers,
        voices=voice_names(voices),
    )


def voice_names(value: str | None) -> list[str] | None:
    """``Alice, Bob`` (or ``*``) as a list of names; None when not given."""
    if value is None or not value.strip():
        return None
    return [name.strip() for name in value.split(",") if name.strip()]
