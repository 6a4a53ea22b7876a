"""What the result side of the page shows, as plain data (``View``), and its pieces."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from stepaudio.params import Mode
from stepaudio.pipeline.formats import clock, speaker_name
from stepaudio.pipeline.result import ProcessResult
from stepaudio.ui.context import UiContext
from stepaudio.ui.downloads import write_downloads
from stepaudio.ui.i18n import t


@dataclass
class View:
    """What the result side of the page shows; ``None`` leaves a field as it is."""

    progress: str = ""
    answer: str | None = None
    thinking: str | None = None
    transcript: str | None = None
    summary: str | None = None
    files: list[str] | None = None
    task_id: str | None = None
    speakers: str | None = None
    """The transcript as coloured turns (HTML), when diarized."""
    params: dict[str, Any] | None = None
    """A task's parameters, to put the form back as it was when a page reopens it."""


def cleared(progress: str, **fields: Any) -> View:
    """A view that empties what a previous run left on the page."""
    return View(
        progress=progress,
        answer="",
        thinking="",
        transcript="",
        summary="",
        files=[],
        speakers="",
        **fields,
    )


def size_label(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def progress_html(text: str, done: int = 0, total: int = 0, state: str = "running") -> str:
    """A bar the tests and people can read: data attributes carry the numbers."""
    bar = f'<progress value="{done}" max="{max(total, 1)}"></progress>' if total else ""
    return (
        f'<div class="sa-progress" data-state="{state}" data-done="{done}" '
        f'data-total="{total}">{bar}<span>{escape(text)}</span></div>'
    )


def timed_line(start: float, end: float, text: str) -> str:
    return f"[{clock(start)} → {clock(end)}] {text}"


def transcript_text(result: ProcessResult) -> str:
    if result.segments:
        return "\n".join(
            timed_line(
                s.start, s.end, f"{speaker_name(s.speaker)}: {s.text}" if s.speaker else s.text
            )
            for s in result.segments
        )
    return result.transcript or ""


SPEAKER_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")
"""Distinct on light and dark backgrounds; the eighth speaker takes the first's again."""


def speakers_html(result: ProcessResult) -> str:
    """Each speaker's turns in their own colour, with their words ("" if not diarized)."""
    order: dict[str, int] = {}
    lines = []
    for s in result.segments:
        if not s.speaker:
            continue
        colour = SPEAKER_COLOURS[order.setdefault(s.speaker, len(order)) % len(SPEAKER_COLOURS)]
        lines.append(
            f'<p class="sa-turn" data-speaker="{escape(s.speaker)}">'
            f'<span style="color:{colour};font-weight:600">'
            f"{escape(speaker_name(s.speaker))}</span> "
            f"<small>{clock(s.start)}</small> {escape(s.text)}</p>"
        )
    return f'<div class="sa-speakers">{"".join(lines)}</div>' if lines else ""


def final_view(ctx: UiContext, result: ProcessResult, lang: str, task_id: str | None) -> View:
    text = t(
        lang,
        "completed",
        elapsed=result.elapsed_time,
        windows=result.windows,
        engine=result.engine,
    )
    summary = result.summary or (result.answer if result.mode is Mode.SUMMARIZE else "")
    return View(
        progress=progress_html(text, result.windows, result.windows, "completed"),
        answer=result.answer,
        thinking=result.thinking,
        transcript=transcript_text(result),
        speakers=speakers_html(result),
        summary=summary,
        files=write_downloads(ctx.downloads_dir, result, ctx.downloads_keep_s),
        task_id=task_id,
    )


def error_view(text: str, task_id: str | None = None) -> View:
    return View(progress=progress_html(text, state="error"), task_id=task_id)
