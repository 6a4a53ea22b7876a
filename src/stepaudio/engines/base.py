"""The small protocol every engine speaks, and the values that cross it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from stepaudio.params import Mode, ProcessParams


@dataclass(frozen=True)
class Word:
    """One word with its times in seconds (same origin as its segment's)."""

    word: str
    start: float
    end: float
    probability: float | None = None

    def shifted(self, offset: float) -> Word:
        return replace(self, start=round(self.start + offset, 3), end=round(self.end + offset, 3))


@dataclass(frozen=True)
class Segment:
    """Timed text; times in seconds from the start of the recording.

    The optional fields are Whisper's own measures of the segment, as OpenAI's
    ``verbose_json`` reports them; engines that do not give them leave them ``None``
    (they are never invented: the OpenAI face then writes neutral values)."""

    start: float
    end: float
    text: str
    seek: int | None = None
    """Whisper's seek: the mel frame (100 per second) its decoding window started at."""
    tokens: list[int] | None = None
    temperature: float | None = None
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    no_speech_prob: float | None = None
    words: list[Word] | None = None
    """Word times when asked for and the engine gives them; ``None`` means "not given"."""
    speaker: str | None = None
    """The speaker's label when the audio was diarized."""
    speaker_confidence: float | None = None
    """Where ``speaker`` is a known speaker's name: how alike the voices are (cosine of
    their prints; names are given from ``diarize.identify.MATCH_THRESHOLD`` up)."""
    language: str | None = None
    """The language the text is in, where the engine says (Whisper: detected per speech
    chunk, or the one asked for)."""

    def shifted(self, offset: float) -> Segment:
        seek = None if self.seek is None else self.seek + round(offset * 100)
        words = None if self.words is None else [w.shifted(offset) for w in self.words]
        return replace(
            self,
            start=round(self.start + offset, 3),
            end=round(self.end + offset, 3),
            seek=seek,
            words=words,
        )


@dataclass
class Usage:
    audio_seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.audio_seconds += other.audio_seconds
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


@dataclass
class WindowJob:
    """One window of audio for one mode. ``pcm`` is 16 kHz mono int16."""

    mode: Mode
    pcm: np.ndarray
    offset: float
    params: ProcessParams
    retry: bool = False
    """A second attempt after degenerate output (a loop): engines decode more carefully
    (Whisper without conditioning on its previous text)."""
    on_heard: Callable[[list[Segment]], None] | None = None
    """Someone is reading along: engines that decode a window piece by piece call this
    (from any thread) with each piece's segments once final, in order, times relative to
    the window, what was heard (a translation's source); the output still holds them all."""


@dataclass
class ModelOutput:
    """What a model call produced: the answer, its reasoning, and for verbatim modes timed
    segments (times relative to the window). ``truncated`` marks output cut by max_tokens."""

    text: str
    thinking: str = ""
    segments: list[Segment] = field(default_factory=list)
    language: str | None = None
    usage: Usage = field(default_factory=Usage)
    truncated: bool = False
    backend: str | None = None
    source: str | None = None
    """A translation's source: what was said, as heard (engines that transcribe first and
    then translate; None where the model translates the audio directly)."""
    spoken: dict[str, float] = field(default_factory=dict)
    """Seconds of speech heard in each language (engines that tell; translations too)."""
    warnings: list[str] = field(default_factory=list)
    """What the caller should know of this window's result (``ProcessResult.warnings``)."""


@dataclass
class TextJob:
    """A text-only call (reduce steps: summaries, answers, translations of text)."""

    system: str
    prompt: str
    params: ProcessParams
    max_tokens: int | None = None


LANES = 3
"""How many times its ``capacity()`` an engine may be asked to run at once: the pipeline
serves short requests, long requests and background tasks in lanes, each seeing the engine
as if the lanes after it were idle (pipeline/scheduler.py)."""


class Engine(Protocol):
    """What the pipeline needs from a model backend."""

    name: str

    def audio_modes(self) -> frozenset[Mode]:
        """Modes the engine runs directly on audio; others are transcript + text calls."""
        ...

    def max_window_seconds(self, mode: Mode, params: ProcessParams) -> float:
        """Longest window one call can take for ``mode`` (budget, context, output)."""
        ...

    def capacity(self) -> int:
        """Calls that may run at once."""
        ...

    def text_budget_chars(self) -> int:
        """Characters of input a single text call can take."""
        ...

    async def run_window(self, job: WindowJob) -> ModelOutput: ...

    async def complete(self, job: TextJob) -> ModelOutput: ...

    async def health(self) -> dict[str, Any]:
        """A JSON-able description of the engine and whether it can take work (``ready``)."""
        ...

    async def aclose(self) -> None: ...
