"""A result as text for people and subtitle players: txt, json, srt, vtt, md."""

from __future__ import annotations

import json

from stepaudio.pipeline.result import ProcessResult


def _clock(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def srt(result: ProcessResult) -> str:
    blocks = [
        f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text}\n"
        for i, s in enumerate(result.segments, 1)
    ]
    return "\n".join(blocks)


def vtt(result: ProcessResult) -> str:
    cues = [f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text}\n" for s in result.segments]
    return "WEBVTT\n\n" + "\n".join(cues)


def markdown(result: ProcessResult) -> str:
    lines = [f"# {result.mode.value}", ""]
    if result.summary:
        lines += ["## Summary", "", result.summary, ""]
    if result.mode.value in ("understand", "translate"):
        lines += ["## Answer", "", result.answer, ""]
    if result.segments and result.mode.value != "translate":
        lines += ["## Transcript", ""]
        lines += [f"- **[{_clock(s.start, '.')[:8]}]** {s.text}" for s in result.segments]
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


def render(result: ProcessResult, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2)
    if fmt == "srt":
        return srt(result)
    if fmt == "vtt":
        return vtt(result)
    if fmt == "md":
        return markdown(result)
    return result.answer
