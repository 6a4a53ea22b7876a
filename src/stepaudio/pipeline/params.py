"""The five processing modes and the parameters a request may set (the seed's fields)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


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


DEFAULT_QUESTION = "What is the main content of this audio?"


class ProcessParams(BaseModel):
    """What a caller may set for one request; defaults are the seed's."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    mode: Mode = Mode.S2T
    """One of s2t, asr, understand, translate, summarize."""
    instruction: str | None = Field(None, max_length=4000)
    """Extra instruction (s2t, summarize)."""
    question: str = Field(DEFAULT_QUESTION, min_length=1, max_length=4000)
    """The question (understand)."""
    target_lang: str = Field("Chinese", min_length=1, max_length=64)
    """Target language (translate)."""
    language: str | None = Field(None, max_length=16)
    """Spoken language code (``en``, ``zh``…); None: detected."""
    max_tokens: int = Field(2048, ge=1, le=65536)
    """Most tokens the model may generate per call (reasoning included)."""
    temperature: float | None = Field(None, ge=0, le=2)
    """Sampling temperature; None: the mode's default (0.7, 0 for asr, 0.1 for translate)."""
    top_p: float = Field(0.9, gt=0, le=1)
    """Nucleus sampling."""
    repetition_penalty: float = Field(1.0, gt=0, le=2)
    """Repetition penalty."""
    thinking: bool = True
    """Let Step-Audio reason before answering (off: the empty-reasoning prefill)."""
    segment_duration: float | None = Field(None, ge=5, le=86400)
    """Window length in seconds, overriding the planner (the seed's --segment-duration)."""
    parallel: int | None = Field(None, ge=1, le=64)
    """Windows processed at once, at most."""

    def effective_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return {Mode.ASR: 0.0, Mode.TRANSLATE: 0.1}.get(self.mode, 0.7)
