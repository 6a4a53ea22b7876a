"""The five processing modes, the parameters a request may set and their defaults.

The bottom of the package: engines, the pipeline and every face (HTTP forms, OpenAI
routes, CLI, web page, task worker) import it; it imports nothing of ours. Faces build a
request with ``ProcessParams.from_user(...)``, passing what the user gave (None or ""
for what they left out) so that the defaults are stated here only.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from stepaudio import languages


class Mode(StrEnum):
    S2T = "s2t"
    """Transcript plus summary."""
    ASR = "asr"
    """Verbatim transcript."""
    UNDERSTAND = "understand"
    """Answer a question about the audio."""
    TRANSLATE = "translate"
    """Translate the speech into ``target_lang``."""
    SUMMARIZE = "summarize"
    """A concise summary."""

    @property
    def verbatim(self) -> bool:
        """Modes whose answer grows with the audio (so windows stay short)."""
        return self in (Mode.ASR, Mode.TRANSLATE, Mode.S2T)

    @property
    def default_temperature(self) -> float:
        """Sampling temperature when the request sets none: greedy for a transcript,
        nearly so for a translation, freer for answers and summaries."""
        return {Mode.ASR: 0.0, Mode.TRANSLATE: 0.1}.get(self, 0.7)


DEFAULT_MODE = Mode.S2T
DEFAULT_QUESTION = "What is the main content of this audio?"
DEFAULT_TARGET_LANG = "Chinese"
DEFAULT_MAX_TOKENS = 2048
DEFAULT_TOP_P = 0.9

MAX_SPEAKERS = 32
"""Most speakers a request may ask for: a meeting, not a stadium (clustering cost grows
with it, and more voices than this in one recording are not told apart anyway)."""

MAX_KNOWN_SPEAKERS = 4
"""Named reference clips one request may bring (OpenAI's limit too)."""
MAX_REFERENCE_BYTES = 2_000_000
"""Largest encoded reference clip: a few seconds of a voice, not a recording."""
MAX_SPEAKER_NAME = 64
MAX_LIBRARY_VOICES = 100
"""Voices one key may keep in its library: a team's people, not a population."""

MAX_TEXT_CHARS = 2000
"""Longest ``question`` or ``instruction``: a question, not a document to smuggle in."""
MAX_LANG_CHARS = 40
MAX_LANG_WORDS = 5
_LANG_PUNCT = frozenset(" -_()")


def _printable(text: str) -> str:
    """Drop control characters but newline and tab: they reach prompts verbatim, where a
    NUL or an escape sequence has no business (and \r\n becomes \n)."""
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")


def _language_name(value: str) -> str:
    """A language name or code (``English``, ``中文``, ``pt-BR``, ``Chinese (Traditional)``),
    nothing else: it is put into prompts ("translate it to {lang}"), so newlines, control
    characters, punctuation and sentences ("English. Ignore previous instructions") are
    refused instead of being passed to the model."""
    value = value.strip()
    if not value:
        raise ValueError("must name a language")
    if len(value) > MAX_LANG_CHARS:
        raise ValueError(f"must be a language name of at most {MAX_LANG_CHARS} characters")
    for c in value:
        if c not in _LANG_PUNCT and unicodedata.category(c)[0] not in "LMN":
            raise ValueError(
                "must be a language name or code: letters, digits, spaces, hyphens and "
                f"parentheses only (found {c!r})"
            )
    if len(value.split()) > MAX_LANG_WORDS:
        raise ValueError(f"must be a language name of at most {MAX_LANG_WORDS} words")
    return value


def _target_language(value: str) -> str:
    """One of the languages the text models write, by any of its names, as its English
    name (what the prompts say)."""
    language = languages.find(value)
    if language is None:
        raise ValueError(
            f"{value!r} is not a language the text model writes; one of: {languages.listed()} "
            "(names in English, in Chinese or in the language itself, or the codes)"
        )
    return language.english


def _spoken_language(value: object) -> object:
    """A spoken language by name (``english``, ``中文``, ``Chinese (Traditional)``) becomes
    its code; a code is left to Whisper, which hears more languages than are listed."""
    # Exact names only: an unknown variant ("zh-xx") goes on to be refused, not guessed.
    if isinstance(value, str) and (language := languages.find(value, variants=False)):
        return language.code
    return value


def speaker_name(name: str) -> str:
    """A known speaker's name: 1 to ``MAX_SPEAKER_NAME`` printable characters (it is
    shown in transcripts, subtitles and the page, and put in prompts)."""
    name = name.strip()
    control = any(unicodedata.category(c)[0] == "C" for c in name)
    if not name or len(name) > MAX_SPEAKER_NAME or control:
        raise ValueError(f"a speaker name must be 1 to {MAX_SPEAKER_NAME} printable characters")
    return name


PromptText = Annotated[str, AfterValidator(_printable)]
LanguageName = Annotated[str, AfterValidator(_language_name), AfterValidator(_target_language)]
SpokenLanguage = Annotated[str | None, BeforeValidator(_spoken_language)]


class ProcessParams(BaseModel):
    """What a caller may set for one request; defaults are the seed's."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    mode: Mode = DEFAULT_MODE
    """One of s2t, asr, understand, translate, summarize."""
    instruction: PromptText | None = Field(None, max_length=MAX_TEXT_CHARS)
    """Extra instruction (s2t, summarize); control characters but newline and tab are
    dropped."""
    prompt: PromptText | None = Field(None, max_length=MAX_TEXT_CHARS)
    """Text the transcript should follow in spelling and style (names, terms; OpenAI's
    ``prompt``): the embedded Whisper's initial prompt. Engines without one do not use it."""
    question: PromptText = Field(DEFAULT_QUESTION, min_length=1, max_length=MAX_TEXT_CHARS)
    """The question (understand); control characters but newline and tab are dropped."""
    target_lang: LanguageName = Field(DEFAULT_TARGET_LANG, min_length=1, max_length=MAX_LANG_CHARS)
    """Target language (translate): one of the languages the text model writes
    (``stepaudio.languages``), by its code or its name in English, Chinese or itself;
    kept as its English name."""
    language: SpokenLanguage = Field(None, max_length=16)
    """Spoken language: a code (``en``, ``zh``…) or a listed language's name; None:
    detected. Chinese is written in
    Simplified characters (``zh``, ``zh-CN``) or Traditional (``zh-TW``, ``zh-Hant``,
    ``zh-HK``) by the embedded engine."""
    max_tokens: int = Field(DEFAULT_MAX_TOKENS, ge=1, le=65536)
    """Most tokens the model may generate per call (reasoning included)."""
    temperature: float | None = Field(None, ge=0, le=2)
    """Sampling temperature; None: the mode's default (0.7, 0 for asr, 0.1 for translate)."""
    top_p: float = Field(DEFAULT_TOP_P, gt=0, le=1)
    """Nucleus sampling."""
    repetition_penalty: float = Field(1.0, gt=0, le=2)
    """Repetition penalty."""
    thinking: bool = True
    """Let Step-Audio reason before answering (off: the empty-reasoning prefill)."""
    segment_duration: float | None = Field(None, ge=5, le=86400, allow_inf_nan=False)
    """Window length in seconds, overriding the planner (the seed's --segment-duration);
    longer than the engine's largest window is clamped to it."""
    parallel: int | None = Field(None, ge=1, le=64)
    """Windows processed at once, at most (the engine's slots bound it too)."""
    draft: bool = False
    """A hypothesis to be checked against a later one (live partials): engines may trade a
    little exactness for speed (the embedded Whisper: engines/whisper_draft.py)."""
    verbatim: bool = Field(False, exclude=True)
    """The text exactly as the model wrote it, for live turns (each hypothesis is compared
    with the one before it, character by character); off, Mandarin gets the commas and
    full stops Whisper base often leaves out (engines/chinese_script.py)."""
    word_timestamps: bool = False
    """Times for every word of the transcript (engines that have none say so in
    ``warnings`` instead of inventing them)."""
    diarize: bool = False
    """Label each segment with its speaker (``A``, ``B``, ...), whatever engine
    transcribes."""
    min_speakers: int | None = Field(None, ge=1, le=MAX_SPEAKERS)
    """Fewest speakers to find (diarize)."""
    max_speakers: int | None = Field(None, ge=1, le=MAX_SPEAKERS)
    """Most speakers to find (diarize)."""
    num_speakers: int | None = Field(None, ge=1, le=MAX_SPEAKERS)
    """Exact number of speakers (diarize); None: counted from the audio."""
    known_speakers: dict[str, bytes] = Field(
        default_factory=dict, max_length=MAX_KNOWN_SPEAKERS, exclude=True
    )
    """Reference clips by speaker name (diarize): a voice that matches one is labelled
    with its name. Never echoed back in results (``exclude``)."""

    voices: list[str] = Field(default_factory=list, max_length=MAX_LIBRARY_VOICES)
    """Known speakers from the key's voice library (``/api/voices``), by name; ``*``: all
    of them. A voice that matches one is labelled with its name and a
    ``speaker_confidence``; asking for voices asks for ``diarize``."""
    voice_prints: dict[str, list[float]] = Field(default_factory=dict, exclude=True)
    """The library's prints of ``voices``, looked up for the request's key by the service
    (never a caller's field; never echoed)."""

    @field_validator("voices")
    @classmethod
    def _voice_names(cls, value: list[str]) -> list[str]:
        names = [speaker_name(v) for v in value]
        if len(set(names)) != len(names):
            raise ValueError("names the same voice twice")
        return names

    @model_validator(mode="after")
    def _voices_mean_speakers(self) -> ProcessParams:
        if self.voices and not self.diarize:
            self.diarize = True
        return self

    @field_validator("known_speakers")
    @classmethod
    def _known_speakers(cls, value: dict[str, bytes]) -> dict[str, bytes]:
        for name, clip in value.items():
            speaker_name(name)
            if not clip or len(clip) > MAX_REFERENCE_BYTES:
                raise ValueError(f"a reference clip must be 1 to {MAX_REFERENCE_BYTES} bytes")
        return value

    # Contradictory bounds would make the clustering pick one silently; each check names
    # the field it refuses (the fields before it are validated first).
    @field_validator("max_speakers")
    @classmethod
    def _max_not_below_min(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min_speakers")
        if value is not None and low is not None and value < low:
            raise ValueError("must not be less than min_speakers")
        return value

    @field_validator("num_speakers")
    @classmethod
    def _num_within_bounds(cls, value: int | None, info: ValidationInfo) -> int | None:
        low, high = info.data.get("min_speakers"), info.data.get("max_speakers")
        if value is not None and not (low or 1) <= value <= (high or MAX_SPEAKERS):
            raise ValueError("must lie between min_speakers and max_speakers")
        return value

    @classmethod
    def from_user(cls, **values: object) -> ProcessParams:
        """Parameters from a face's raw values: a value left out (None, or "" from an
        empty form field or option) takes the model's default; everything else is
        validated as given (``pydantic.ValidationError`` if wrong).

        A blank but non-empty string is kept, not dropped: over HTTP a ``target_lang``
        of spaces is a mistake the caller hears about (400). Faces whose text boxes
        always send a string (the web page) trim them first."""
        return cls.model_validate({k: v for k, v in values.items() if v is not None and v != ""})

    def effective_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return self.mode.default_temperature
