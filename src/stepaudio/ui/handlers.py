"""What the page's process side does, without Gradio in it: who the visitor is, the form
as parameters, what a recording would take, and a run in this process.

Short recordings run in-process through the pipeline so each window's text can be shown
as it finishes; long ones become tasks (``tasks.py``).

The page has no key of its own: each handler passes on the key the visitor's browser
presented (the login cookie), so a task started on the page belongs to that key's owner,
exactly as if it came through the API with the same key.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import cookie_parser

from stepaudio.api.auth import identify
from stepaudio.api.services import Services
from stepaudio.api.sessions import PageSessions
from stepaudio.errors import StepAudioError
from stepaudio.params import ProcessParams
from stepaudio.pipeline.describe import audio_report
from stepaudio.pipeline.formats import clock
from stepaudio.pipeline.result import ProcessResult
from stepaudio.pipeline.run import Progress
from stepaudio.ui.context import UiContext
from stepaudio.ui.i18n import t
from stepaudio.ui.views import (
    View,
    cleared,
    error_view,
    final_view,
    progress_html,
    size_label,
    timed_line,
)


@dataclass(frozen=True)
class Visitor:
    """Who is using the page, and the credentials to call the API as them."""

    owner: str | None
    """The identity the API gives the visitor's key or session (None: neither valid)."""
    credentials: dict[str, str] = field(default_factory=dict)
    """Headers presenting the visitor's own key or session to the API (tasks)."""


async def visitor(services: Services, sessions: PageSessions | None, request: Any) -> Visitor:
    """The visitor of a Gradio event (``gr.Request``), from its headers and cookies.

    The guard has already refused requests without a valid key or session; this is the
    API's own check again (``api/auth.py``), for the identity (and in case the page is
    served without the guard)."""
    raw = getattr(request, "request", None)  # the underlying Starlette request
    if raw is not None:
        headers: Mapping[str, str] = raw.headers
        cookies: Mapping[str, str] = raw.cookies
    elif request is not None:
        # Gradio rebuilt the request from a dict (no Starlette object at hand).
        headers = {str(k).lower(): str(v) for k, v in dict(request.headers or {}).items()}
        cookies = cookie_parser(headers.get("cookie", ""))
    else:
        headers, cookies = {}, {}
    found = await identify(services.settings.api_keys, sessions, headers, cookies)
    return Visitor(found.owner, found.headers)


def form_params(**values: Any) -> ProcessParams:
    """The form's values as the API's parameters. Text boxes always send a string, so
    they are trimmed (blank: the default); a window length of 0 means automatic."""
    segment = values.pop("segment_duration", None)
    trimmed = {k: v.strip() if isinstance(v, str) else v for k, v in values.items()}
    return ProcessParams.from_user(
        **trimmed, segment_duration=float(segment) if segment and segment > 0 else None
    )


async def describe_audio(
    ctx: UiContext, who: Visitor, path: str | None, mode: str, segment: float, lang: str
) -> tuple[str, bool]:
    """Markdown about the recording and whether it should run as a task."""
    if not path:
        return "", False
    services = ctx.services
    try:
        info = await services.pipeline.probe(ctx.handed.check(who.owner, path))
    except StepAudioError as exc:
        return t(lang, "error", error=exc.message), False
    report = audio_report(info, services.engine)
    if segment and segment > 0:
        windows = max(1, math.ceil(info.duration / segment))
    else:
        windows = report["windows_by_mode"].get(mode, report["windows"])
    lines = [
        t(
            lang,
            "info_line",
            duration=clock(info.duration),
            format=info.format,
            codec=info.codec,
            rate=info.sample_rate,
            channels=info.channels,
            size=size_label(info.size_bytes),
        ),
        t(lang, "info_windows", windows=windows),
    ]
    long = info.duration > ctx.task_after_s
    if long:
        lines.append(t(lang, "info_task"))
    return "\n\n".join(lines), long


def _window_lines(p: Progress) -> list[str]:
    """A finished window's text, timed in the whole recording."""
    if p.output is None or p.span is None:
        return []
    start, end, out = p.span.start, p.span.end, p.output
    if out.segments:
        return [timed_line(start + s.start, start + s.end, s.text.strip()) for s in out.segments]
    return [timed_line(start, end, out.text.strip())] if out.text.strip() else []


async def run_inline(
    ctx: UiContext, who: Visitor, path: Path, params: ProcessParams, lang: str
) -> AsyncIterator[View]:
    """Process in this process, yielding each window's text as it finishes; admitted
    like an API request of the visitor's key (its share of the queue included)."""
    services = ctx.services
    lines: list[str] = []
    shown = False
    result: ProcessResult | None = None
    yield cleared(progress_html(t(lang, "decoding")), task_id="")
    try:
        async with (
            services.lifecycle.open(path, params, face="page", owner=who.owner) as run,
            # Closed at once if the page goes away: that cancels the work.
            aclosing(run.events()) as events,
        ):
            async for event in events:
                if isinstance(event, ProcessResult):
                    result = event
                    continue
                lines += _window_lines(event)
                shown = shown or event.output is not None
                text = t(lang, "windows", done=event.done, total=event.total)
                if event.done == event.total and event.total:
                    text = t(lang, "merging")
                view = View(progress=progress_html(text, event.done, event.total))
                if shown:
                    view.transcript = "\n".join(lines)
                    view.answer = t(lang, "partial", done=event.done, total=event.total)
                yield view
    except StepAudioError as exc:
        yield error_view(t(lang, "error", error=exc.message))
        return
    if result is not None:  # events() ends with the result or raises
        yield final_view(ctx, result, lang, None)
