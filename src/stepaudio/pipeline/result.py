"""The result of processing one recording: the seed's keys plus ours."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stepaudio.params import Mode


class WordOut(BaseModel):
    """One word and its times in seconds from the start of the recording."""

    # Built from the engines' ``Word`` dataclasses as they are.
    model_config = ConfigDict(from_attributes=True)

    word: str
    start: float
    end: float
    probability: float | None = None


class SegmentOut(BaseModel):
    start: float
    end: float
    text: str
    seek: int | None = None
    """Whisper's measures of the segment (``engines.base.Segment``); None where the
    engine gives none."""
    tokens: list[int] | None = None
    temperature: float | None = None
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    no_speech_prob: float | None = None
    words: list[WordOut] | None = None
    """The segment's words with their times (``word_timestamps``); None when not asked
    for or when the engine gives none (``warnings`` says so)."""
    speaker: str | None = None
    """Who speaks (``diarize``): ``A``, ``B``, ... in order of first appearance, or a
    known speaker's name (``voices``, ``known_speaker_names``)."""
    speaker_confidence: float | None = None
    """For a known speaker's name: how alike the voices are (cosine, 0.63 and up; 1 is
    the same print). None for letters."""
    language: str | None = None
    """The language the segment is written in (ISO code): each speech chunk's own where
    none was asked for, so a recording in two languages is transcribed in both."""


class UsageOut(BaseModel):
    audio_seconds: float
    prompt_tokens: int
    completion_tokens: int


class Timings(BaseModel):
    decode: float
    """Seconds spent probing and decoding the audio."""
    model: float
    """Seconds spent in model calls (wall time, windows in parallel)."""
    total: float


class CitationOut(BaseModel):
    """A segment of the transcript an answer quotes."""

    start: float
    end: float
    text: str
    speaker: str | None = None


class ProcessResult(BaseModel):
    status: Literal["success"] = "success"
    answer: str = Field(description="The answer for the mode (the seed's key).")
    thinking: str = Field("", description="The model's reasoning, never part of the answer.")
    full_response: str = Field(description="Reasoning and answer as the model wrote them.")
    elapsed_time: float = Field(description="Seconds from request to result (the seed's key).")
    mode: Mode
    transcript: str | None = None
    summary: str | None = None
    segments: list[SegmentOut] = []
    language: str | None = Field(None, description="The language of most of the speech.")
    languages: list[str] = Field(
        [], description="Every language heard, most spoken first (segments say which is where)."
    )
    audio: dict[str, Any] = Field(description="The probe of the recording.")
    usage: UsageOut
    timings: Timings
    engine: str
    windows: int
    truncated: bool = False
    params: dict[str, Any] = {}
    citations: list[CitationOut] = Field(
        [],
        description="understand: the transcript's segments the answer quotes, with their real "
        "times (a quote the transcript does not hold gets none, and a warning)",
    )
    warnings: list[str] = Field(
        [], description="What was asked for but could not be given (e.g. word times)."
    )
