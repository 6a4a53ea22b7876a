"""Join window outputs into one answer, per mode.

Verbatim modes concatenate in order with timestamps shifted to the whole recording;
summary modes reduce the windows' results (or the transcript) with text-only calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stepaudio.audio.cut import Span
from stepaudio.engines import prompts
from stepaudio.engines.base import Engine, ModelOutput, Segment
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.citations import Citation, ground
from stepaudio.pipeline.reduce import answer_task, reduce_texts, summary_task
from stepaudio.text import clock, join_texts


@dataclass
class Merged:
    answer: str
    thinking: str
    full_response: str
    transcript: str | None = None
    summary: str | None = None
    segments: list[Segment] = field(default_factory=list)
    truncated: bool = False
    extra: list[ModelOutput] = field(default_factory=list)
    """Outputs of reduce calls, counted in usage."""
    warnings: list[str] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    """The transcript's segments an answer quotes (``understand``)."""


UNMATCHED_QUOTE = (
    'citation_unmatched: the answer quotes "{quote}", which the transcript does not '
    "hold; it is shown without a time"
)
NO_SPEECH = "no_speech: no speech was found in the audio; the result is empty."


def _segments(spans: list[Span], outputs: list[ModelOutput]) -> list[Segment]:
    out: list[Segment] = []
    for span, output in zip(spans, outputs, strict=True):
        if output.segments:
            out.extend(s.shifted(span.start) for s in output.segments)
        elif output.text.strip():
            out.append(Segment(span.start, span.end, output.text.strip()))
    return out


def languages_spoken(outputs: list[ModelOutput]) -> list[str]:
    """Every language heard, most spoken first (windows whose engine does not say how
    much of each count for their one language)."""
    seconds: dict[str, float] = {}
    for output in outputs:
        spoken = output.spoken or ({output.language: 0.0} if output.language else {})
        for language, s in spoken.items():
            seconds[language] = seconds.get(language, 0.0) + s
    return sorted(seconds, key=lambda language: -seconds[language])


def _said(segment: Segment) -> str:
    """A line for the text model; with its speaker when diarized, so that summaries and
    answers can say who said what."""
    return f"Speaker {segment.speaker}: {segment.text}" if segment.speaker else segment.text


def _thinking(outputs: list[ModelOutput]) -> str:
    parts = [o.thinking.strip() for o in outputs if o.thinking.strip()]
    return "\n\n".join(parts)


def _chinese(params: ProcessParams, outputs: list[ModelOutput]) -> bool:
    """Whether the recording is Chinese (as asked, or as detected): prompts follow."""
    language = params.language or next((o.language for o in outputs if o.language), None)
    return prompts.is_chinese(language)


def _full(thinking: str, answer: str) -> str:
    return f"<think>\n{thinking}\n</think>\n{answer}" if thinking else answer


async def merge(
    engine: Engine, params: ProcessParams, spans: list[Span], outputs: list[ModelOutput]
) -> Merged:
    mode = params.mode
    truncated = any(o.truncated for o in outputs)
    thinking = _thinking(outputs)
    texts = [o.text for o in outputs]
    transcribed = mode is Mode.S2T or mode not in engine.audio_modes()

    if transcribed or mode in (Mode.ASR, Mode.TRANSLATE):
        segments = _segments(spans, outputs)
        joined = join_texts(texts)
        if not joined.strip():
            # Silence is an answer, not an error (OpenAI answers 200 with empty text): a
            # batch of recordings or a chunked recorder goes on past a quiet minute.
            return Merged(
                "",
                thinking,
                _full(thinking, ""),
                transcript="" if mode in (Mode.ASR, Mode.S2T) else None,
                summary="" if mode in (Mode.S2T, Mode.SUMMARIZE) else None,
                warnings=[NO_SPEECH],
            )
        if mode in (Mode.ASR, Mode.TRANSLATE):
            # A translation keeps its source beside it, where the engine heard one: what
            # was said is what a reader checks the translation against.
            source = join_texts(o.source for o in outputs if o.source) or None
            return Merged(
                joined,
                thinking,
                _full(thinking, joined),
                transcript=joined if mode is Mode.ASR else source,
                segments=segments,
                truncated=truncated,
            )
        transcript = joined
        zh = _chinese(params, outputs)
        citations: list[Citation] = []
        warnings: list[str] = []
        if mode is Mode.UNDERSTAND:
            # Timed lines, so the answer can cite where in the recording it comes from.
            timed = [f"[{clock(s.start)}] {_said(s)}" for s in segments]
            reduced = await reduce_texts(engine, timed, answer_task(params.question, zh), params)
        else:
            reduced = await reduce_texts(
                engine, [_said(s) for s in segments], summary_task(params.instruction, zh), params
            )
        thinking = "\n\n".join(p for p in (thinking, reduced.thinking.strip()) if p)
        truncated = truncated or reduced.truncated
        summary = reduced.text if mode in (Mode.S2T, Mode.SUMMARIZE) else None
        if mode is Mode.S2T:
            # The labels in the recording's language, as the summary is.
            if zh:
                answer = f"转写：\n{transcript}\n\n摘要：\n{summary}"
            else:
                answer = f"Transcript:\n{transcript}\n\nSummary:\n{summary}"
        elif mode is Mode.UNDERSTAND:
            # Quotes checked against the transcript: real times, or none.
            answer, citations, unmatched = ground(reduced.text, segments)
            warnings = [UNMATCHED_QUOTE.format(quote=q[:80]) for q in unmatched]
        else:
            answer = reduced.text
        if not answer.strip():
            truncated = True
        return Merged(
            answer,
            thinking,
            _full(thinking, answer),
            transcript,
            summary,
            segments,
            truncated,
            [reduced],
            warnings=warnings,
            citations=citations,
        )

    # The engine answered on the audio itself (summarize / understand on Step-Audio).
    if len(outputs) == 1:
        answer = outputs[0].text
        extra: list[ModelOutput] = []
    else:
        zh = _chinese(params, outputs)
        task = (
            answer_task(params.question, zh)
            if mode is Mode.UNDERSTAND
            else summary_task(params.instruction, zh)
        )
        reduced = await reduce_texts(engine, texts, task, params, partial=True)
        answer, extra = reduced.text, [reduced]
        truncated = truncated or reduced.truncated
    summary = answer if mode is Mode.SUMMARIZE else None
    if not answer.strip():
        truncated = True
    return Merged(
        answer, thinking, _full(thinking, answer), summary=summary, truncated=truncated, extra=extra
    )
