"""One result, every output format of every face: the CLI's ``--format``, the web page's
downloads and the OpenAI routes' ``response_format`` all render through ``render``."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from stepaudio.params import Mode
from stepaudio.pipeline.result import ProcessResult, SegmentOut
from stepaudio.pipeline.subtitles import cues
from stepaudio.text import join_texts


class Format(StrEnum):
    TXT = "txt"
    """The answer as plain text."""
    TEXT = "text"
    """The same (OpenAI's name)."""
    JSON = "json"
    """The whole result, as ``/api/process`` returns it."""
    SRT = "srt"
    VTT = "vtt"
    MD = "md"
    """A readable report: summary, answer, timed transcript, reasoning."""
    OPENAI_JSON = "openai_json"
    """OpenAI's ``json`` object: ``{"text": answer}``, with ``usage`` for transcriptions."""
    VERBOSE_JSON = "verbose_json"
    """OpenAI's ``verbose_json``: language, duration and timed segments (and ``words``
    when word times were asked for)."""
    DIARIZED_JSON = "diarized_json"
    """OpenAI's ``diarized_json``: segments with their ``speaker``."""


def timestamp(seconds: float, sep: str = ".") -> str:
    """``HH:MM:SS.mmm`` (``sep`` ``,`` for SubRip)."""
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def clock(seconds: float) -> str:
    """``HH:MM:SS``, to the nearest second (for people reading along)."""
    return timestamp(round(seconds))[:8]


_LETTERS = re.compile(r"[A-Z]{1,2}")


def speaker_name(label: str) -> str:
    """How a speaker is shown to people: ``Speaker A`` for the letters given to unnamed
    voices, a known speaker's name as it is."""
    return f"Speaker {label}" if _LETTERS.fullmatch(label) else label


def _said(s: SegmentOut) -> str:
    return f"{speaker_name(s.speaker)}: {s.text}" if s.speaker else s.text


def _who(s: SegmentOut) -> str:
    return f" {speaker_name(s.speaker)}:" if s.speaker else ""


def srt(result: ProcessResult) -> str:
    """SubRip: readable cues (``subtitles.py``), the speaker named in a cue's text."""
    blocks = [
        f"{i}\n{timestamp(c.start, ',')} --> {timestamp(c.end, ',')}\n" + "\n".join(c.lines) + "\n"
        for i, c in enumerate(cues(result.segments, prefix=True), 1)
    ]
    return "\n".join(blocks)


def _voice(name: str) -> str:
    # A cue's voice tag ends at ">": a name may not carry one (nor a newline).
    return " ".join(re.sub(r"[<>&]", "", name).split())


def vtt(result: ProcessResult) -> str:
    """WebVTT: readable cues, the speaker as the cue's voice tag."""
    blocks = []
    for c in cues(result.segments):
        text = "\n".join(c.lines)
        if c.speaker:
            text = f"<v {_voice(speaker_name(c.speaker))}>{text}"
        blocks.append(f"{timestamp(c.start)} --> {timestamp(c.end)}\n{text}\n")
    return "WEBVTT\n\n" + "\n".join(blocks)


def diarized(result: ProcessResult) -> bool:
    return any(s.speaker for s in result.segments)


def dialogue(result: ProcessResult) -> str:
    """The transcript as a dialogue: one paragraph per turn, ``Speaker A: ...``."""
    turns: list[tuple[str, list[str]]] = []
    for s in result.segments:
        who = s.speaker or ""
        if turns and turns[-1][0] == who:
            turns[-1][1].append(s.text)
        else:
            turns.append((who, [s.text]))
    return "\n\n".join(
        f"{speaker_name(who)}: {join_texts(texts)}" if who else join_texts(texts)
        for who, texts in turns
    )


def plain(result: ProcessResult) -> str:
    """The answer; a diarized transcript as a dialogue."""
    if result.mode is Mode.ASR and diarized(result):
        return dialogue(result)
    return result.answer


_TITLES = {
    Mode.S2T: "Transcript and summary",
    Mode.ASR: "Transcript",
    Mode.UNDERSTAND: "Answer",
    Mode.TRANSLATE: "Translation",
    Mode.SUMMARIZE: "Summary",
}


def markdown(result: ProcessResult) -> str:
    title = _TITLES[result.mode]
    if result.mode is Mode.TRANSLATE:
        title += f" into {result.params.get('target_lang') or 'English'}"
    lines = [f"# {title}", ""]
    if result.mode is Mode.UNDERSTAND and result.params.get("question"):
        lines += [f"**Question:** {result.params['question']}", ""]
    if result.summary:
        lines += ["## Summary", "", result.summary, ""]
    if result.mode in (Mode.UNDERSTAND, Mode.TRANSLATE):
        heading = "Answer" if result.mode is Mode.UNDERSTAND else "Translation"
        lines += [f"## {heading}", "", result.answer, ""]
    if result.segments and result.mode is not Mode.TRANSLATE:
        lines += ["## Transcript", ""]
        # Truncated to the second, not rounded: a line never starts after its speech.
        lines += [f"- **[{timestamp(s.start)[:8]}]{_who(s)}** {s.text}" for s in result.segments]
        lines.append("")
    if result.thinking:
        lines += [
            "<details><summary>Reasoning</summary>",
            "",
            result.thinking,
            "",
            "</details>",
            "",
        ]
    return "\n".join(lines)


def _compact(data: Any) -> str:
    # As FastAPI's JSONResponse writes it, so the OpenAI routes' bodies are unchanged.
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def usage(result: ProcessResult) -> dict[str, Any]:
    """OpenAI's usage of a transcription: the audio's duration, in whole seconds rounded
    up (as OpenAI bills it)."""
    return {"type": "duration", "seconds": math.ceil(result.usage.audio_seconds)}


def openai_json(result: ProcessResult) -> dict[str, Any]:
    """OpenAI's ``json``: the text, and for transcriptions the usage (its translation
    object has none)."""
    body: dict[str, Any] = {"text": result.answer}
    if result.mode is not Mode.TRANSLATE:
        body["usage"] = usage(result)
    return body


def verbose_segment(index: int, s: SegmentOut) -> dict[str, Any]:
    """One segment with every field OpenAI's ``TranscriptionSegment`` declares. Whisper's
    measures (seek, tokens, temperature, avg_logprob, compression_ratio, no_speech_prob)
    are its own where the engine gave them; an engine without them (Step-Audio, a window
    that came back as plain text) gets neutral values, not estimates: seek 0, tokens
    ``[]`` and 0.0 for the others."""
    return {
        "id": index,
        "seek": s.seek if s.seek is not None else 0,
        "start": s.start,
        "end": s.end,
        "text": s.text,
        "tokens": s.tokens if s.tokens is not None else [],
        "temperature": s.temperature if s.temperature is not None else 0.0,
        "avg_logprob": s.avg_logprob if s.avg_logprob is not None else 0.0,
        "compression_ratio": s.compression_ratio if s.compression_ratio is not None else 0.0,
        "no_speech_prob": s.no_speech_prob if s.no_speech_prob is not None else 0.0,
        # Not OpenAI's, but harmless to its clients: who speaks, when diarized.
        **({"speaker": s.speaker} if s.speaker else {}),
    }


def _words(result: ProcessResult) -> list[dict[str, Any]] | None:
    """OpenAI's top-level ``words`` (``TranscriptionWord``), when word times were given."""
    if not any(s.words is not None for s in result.segments):
        return None
    return [
        {"word": w.word, "start": w.start, "end": w.end}
        for s in result.segments
        for w in s.words or []
    ]


def verbose(result: ProcessResult) -> dict[str, Any]:
    translated = result.mode is Mode.TRANSLATE
    body: dict[str, Any] = {
        "task": "translate" if translated else "transcribe",
        "language": result.language or "",
        "duration": result.usage.audio_seconds,
        "text": result.answer,
        "segments": [verbose_segment(i, s) for i, s in enumerate(result.segments)],
    }
    if (words := _words(result)) is not None:
        body["words"] = words
    if not translated:
        body["usage"] = usage(result)
    return body


def diarized_json(result: ProcessResult) -> dict[str, Any]:
    """OpenAI's ``TranscriptionDiarized``: segments of ``type`` ``transcript.text.segment``
    with their ``speaker`` (``A``, ``B``, ... as OpenAI labels unnamed voices)."""
    return {
        "task": "transcribe",
        "duration": result.usage.audio_seconds,
        "text": result.answer,
        "segments": [
            {
                "type": "transcript.text.segment",
                "id": f"seg_{i}",
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "speaker": s.speaker or "A",
                # Ours, only where a known speaker was named: how alike the voices are.
                **({"speaker_confidence": s.speaker_confidence} if s.speaker_confidence else {}),
            }
            for i, s in enumerate(result.segments)
        ],
        "usage": usage(result),
    }


_RENDERERS: dict[Format, Callable[[ProcessResult], str]] = {
    Format.TXT: plain,
    Format.TEXT: plain,
    Format.JSON: lambda r: json.dumps(r.model_dump(mode="json"), ensure_ascii=False, indent=2),
    Format.SRT: srt,
    Format.VTT: vtt,
    Format.MD: markdown,
    Format.OPENAI_JSON: lambda r: _compact(openai_json(r)),
    Format.VERBOSE_JSON: lambda r: _compact(verbose(r)),
    Format.DIARIZED_JSON: lambda r: _compact(diarized_json(r)),
}

MEDIA_TYPES: dict[Format, str] = {
    Format.JSON: "application/json",
    Format.OPENAI_JSON: "application/json",
    Format.VERBOSE_JSON: "application/json",
    Format.DIARIZED_JSON: "application/json",
    Format.VTT: "text/vtt",
    Format.MD: "text/markdown",
}
"""Content types for HTTP; text/plain for the rest (srt too, as before)."""


def render(result: ProcessResult, fmt: Format | str) -> str:
    """``result`` as ``fmt`` (``ValueError`` for an unknown format)."""
    return _RENDERERS[Format(fmt)](result)


def media_type(fmt: Format | str) -> str:
    return MEDIA_TYPES.get(Format(fmt), "text/plain")
