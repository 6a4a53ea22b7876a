"""What the web page's buttons do, without Gradio in it: probe, run, follow a task, status.

Short recordings run in-process through the pipeline so each window's text can be shown
as it finishes; long ones are submitted to the service's own task API (``/api/task``)
through an in-process ASGI client, so the UI gets exactly what API clients get (durable
tasks, the same validation and keys) without knowing its own URL.

The page has no key of its own: each handler passes on the key the visitor's browser
presented (the login cookie), so a task started on the page belongs to that key's owner,
exactly as if it came through the API with the same key.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from html import escape
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import ValidationError
from starlette.requests import cookie_parser

from stepaudio.api.auth import owner_of, presented_key
from stepaudio.api.services import Services
from stepaudio.engines.base import ModelOutput
from stepaudio.errors import StepAudioError
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.describe import audio_report
from stepaudio.pipeline.formats import render
from stepaudio.pipeline.result import ProcessResult
from stepaudio.pipeline.run import Progress
from stepaudio.ui.i18n import t

DOWNLOAD_FORMATS = ("txt", "srt", "vtt", "json")


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
    params: dict[str, Any] | None = None
    """A task's parameters, to put the form back as it was when a page reopens it."""


@dataclass
class UiContext:
    """The app the UI lives in; services are read when needed (they exist after startup)."""

    app: FastAPI
    task_after_s: float = 600.0
    """Recordings longer than this run as tasks (the page ticks the box by itself)."""
    poll_s: float = 1.0
    downloads_keep_s: float = 24 * 3600
    _tasks: TaskClient | None = field(default=None, repr=False)

    @property
    def services(self) -> Services:
        return self.app.state.services

    @property
    def downloads_dir(self) -> Path:
        return self.services.settings.data_dir / "ui-downloads"

    @property
    def tasks(self) -> TaskClient:
        if self._tasks is None:
            self._tasks = TaskClient(self.app)
        return self._tasks


def clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def size_label(n: int) -> str:
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


@dataclass(frozen=True)
class Visitor:
    """Who is using the page: the key their browser presented and whose it is."""

    key: str | None
    owner: str | None
    """The identity the API gives that key (None: not a valid key)."""


def visitor(services: Services, request: Any) -> Visitor:
    """The visitor of a Gradio event (``gr.Request``), from the headers and the cookie.

    The guard has already refused requests without a valid key; this is the same check
    again, for the identity (and in case the page is served without the guard)."""
    raw = getattr(request, "request", None)  # the underlying Starlette request
    if raw is not None:
        key = presented_key(raw.headers, raw.cookies)
    elif request is not None:
        # Gradio rebuilt the request from a dict (no Starlette object at hand).
        headers = {str(k).lower(): str(v) for k, v in dict(request.headers or {}).items()}
        key = presented_key(headers, cookie_parser(headers.get("cookie", "")))
    else:
        key = None
    return Visitor(key, owner_of(services.settings.api_keys, key))


def build_params(
    mode: str,
    question: str,
    target_lang: str,
    instruction: str,
    max_tokens: float,
    temperature: float,
    thinking: bool,
    segment: float,
) -> ProcessParams:
    """The form's values as the API's parameters (0 window length: automatic)."""
    m = Mode(mode)
    return ProcessParams(
        mode=m,
        question=(question or "").strip() or ProcessParams().question,
        target_lang=(target_lang or "").strip() or "Chinese",
        instruction=(instruction or "").strip() or None,
        max_tokens=int(max_tokens),
        temperature=float(temperature),
        thinking=bool(thinking),
        segment_duration=float(segment) if segment and segment > 0 else None,
    )


async def describe_audio(
    ctx: UiContext, path: str | None, mode: str, segment: float, lang: str
) -> tuple[str, bool]:
    """Markdown about the recording and whether it should run as a task."""
    if not path:
        return "", False
    services = ctx.services
    try:
        info = await services.pipeline.probe(Path(path))
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


def transcript_text(result: ProcessResult) -> str:
    if result.segments:
        return "\n".join(f"[{clock(s.start)} → {clock(s.end)}] {s.text}" for s in result.segments)
    return result.transcript or ""


def write_downloads(ctx: UiContext, result: ProcessResult) -> list[str]:
    """The result as files the browser can save; old ones are pruned on the way."""
    root = ctx.downloads_dir
    root.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - ctx.downloads_keep_s
    for old in root.glob("*/*"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    folder = root / uuid.uuid4().hex
    folder.mkdir()
    paths = []
    for fmt in DOWNLOAD_FORMATS:
        path = folder / f"stepaudio-{result.mode.value}.{fmt}"
        path.write_text(render(result, fmt), encoding="utf-8")
        paths.append(str(path))
    return paths


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
        summary=summary,
        files=write_downloads(ctx, result),
        task_id=task_id,
    )


def error_view(text: str, task_id: str | None = None) -> View:
    return View(progress=progress_html(text, state="error"), task_id=task_id)


class _Partial:
    """Finished windows in recording order, as they arrive (out of order when parallel)."""

    def __init__(self) -> None:
        self.windows: dict[int, tuple[float, float, ModelOutput]] = {}

    def add(self, p: Progress) -> None:
        if p.index is not None and p.output is not None and p.span is not None:
            self.windows[p.index] = (p.span.start, p.span.end, p.output)

    def text(self) -> str:
        lines = []
        for i in sorted(self.windows):
            start, end, out = self.windows[i]
            if out.segments:
                lines += [
                    f"[{clock(start + s.start)} → {clock(start + s.end)}] {s.text.strip()}"
                    for s in out.segments
                ]
            elif out.text.strip():
                lines.append(f"[{clock(start)} → {clock(end)}] {out.text.strip()}")
        return "\n".join(lines)


async def run_inline(
    ctx: UiContext, path: Path, params: ProcessParams, lang: str
) -> AsyncIterator[View]:
    """Process in this process, yielding each window's text as it finishes."""
    services = ctx.services
    partial = _Partial()
    events: asyncio.Queue[Progress] = asyncio.Queue()

    async def work() -> ProcessResult:
        async with services.admitted(params.mode.value):
            return await services.pipeline.process(path, params, on_progress=events.put_nowait)

    job = asyncio.create_task(work())
    yield View(
        progress=progress_html(t(lang, "decoding")),
        answer="",
        thinking="",
        transcript="",
        summary="",
        files=[],
        task_id="",
    )
    try:
        while not job.done() or not events.empty():
            getter = asyncio.create_task(events.get())
            await asyncio.wait({job, getter}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                continue
            p = getter.result()
            partial.add(p)
            text = t(lang, "windows", done=p.done, total=p.total)
            if p.done == p.total and p.total:
                text = t(lang, "merging")
            view = View(progress=progress_html(text, p.done, p.total))
            if partial.windows:
                view.transcript = partial.text()
                view.answer = t(lang, "partial", done=p.done, total=p.total)
            yield view
        result = job.result()
    except StepAudioError as exc:
        yield error_view(t(lang, "error", error=exc.message))
        return
    finally:
        # The page went away (generator closed) or a window failed: stop the work too.
        if not job.done():
            job.cancel()
    services.metrics.audio_seconds.inc(result.usage.audio_seconds)
    yield final_view(ctx, result, lang, None)


class TaskClient:
    """The service's task API, called in-process (no URL, no network)."""

    def __init__(self, app: FastAPI):
        self.app = app

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://stepaudio.ui",
            timeout=None,
        )

    @staticmethod
    def _headers(key: str | None) -> dict[str, str]:
        return {"X-API-Key": key} if key else {}

    async def submit(self, path: Path, params: ProcessParams, key: str | None) -> dict[str, Any]:
        fields = {
            k: ("true" if v else "false") if isinstance(v, bool) else str(v)
            for k, v in params.model_dump(mode="json").items()
            if v is not None
        }
        async with self._client() as client:
            with path.open("rb") as f:
                resp = await client.post(
                    "/api/task",
                    data=fields,
                    files={"audio": (path.name, f)},
                    headers=self._headers(key),
                )
        return {"http_status": resp.status_code, **resp.json()}

    async def get(self, task_id: str, key: str | None) -> dict[str, Any]:
        async with self._client() as client:
            resp = await client.get(f"/api/task/{task_id}", headers=self._headers(key))
        return {"http_status": resp.status_code, **resp.json()}


def _error_message(body: dict[str, Any]) -> str:
    err = body.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or err)
    return str(err or body.get("detail") or body)


async def submit_task(
    ctx: UiContext, path: Path, params: ProcessParams, key: str | None, lang: str
) -> AsyncIterator[View]:
    yield View(
        progress=progress_html(t(lang, "starting")),
        answer="",
        thinking="",
        transcript="",
        summary="",
        files=[],
    )
    body = await ctx.tasks.submit(path, params, key)
    if body["http_status"] >= 300 or "task_id" not in body:
        yield error_view(t(lang, "error", error=_error_message(body)), "")
        return
    async for view in follow_task(ctx, body["task_id"], key, lang):
        yield view


async def follow_task(
    ctx: UiContext, task_id: str, key: str | None, lang: str
) -> AsyncIterator[View]:
    """Poll a task until it ends, yielding its progress, then its result."""
    first = True
    while True:
        body = await ctx.tasks.get(task_id, key)
        status = body.get("status")
        if body["http_status"] == 404:
            yield error_view(t(lang, "not_found", task=task_id), task_id)
            return
        if body["http_status"] >= 300:
            yield error_view(t(lang, "error", error=_error_message(body)), task_id)
            return
        if status == "completed":
            try:
                result = ProcessResult.model_validate(body["result"])
            except ValidationError as exc:
                yield error_view(t(lang, "error", error=str(exc)), task_id)
                return
            yield final_view(ctx, result, lang, task_id)
            return
        if status in ("failed", "cancelled"):
            text = (
                t(lang, "cancelled")
                if status == "cancelled"
                else t(lang, "failed", error=_error_message(body))
            )
            yield error_view(text, task_id)
            return
        progress = body.get("progress") or {}
        done, total = int(progress.get("done") or 0), int(progress.get("total") or 0)
        text = (
            t(lang, "pending")
            if status == "pending"
            else t(lang, "processing", done=done, total=total or "?")
        )
        view = View(progress=progress_html(text, done, total), task_id=task_id)
        if first:
            # A reopened page starts empty: clear what a previous run may have left.
            view = replace(
                view,
                answer="",
                thinking="",
                transcript="",
                summary="",
                files=[],
                params=body.get("params"),
            )
            first = False
        yield view
        await asyncio.sleep(ctx.poll_s)


async def status_markdown(ctx: UiContext, lang: str) -> str:
    """Engine, backends and their health, and the queue, as a small report."""
    services = ctx.services
    try:
        health = await services.engine.health()
    except StepAudioError as exc:
        health = {"engine": services.engine.name, "ready": False, "error": exc.message}
    yes, no = t(lang, "st_yes"), t(lang, "st_no")
    lines = [
        f"### {t(lang, 'st_engine')}: `{health.get('engine', services.engine.name)}`",
        f"- {t(lang, 'st_ready')}: **{yes if health.get('ready') else no}**",
    ]
    for k in ("whisper_model", "text_model", "capacity", "error"):
        if k in health:
            lines.append(f"- {k}: `{health[k]}`")
    lines += ["", f"### {t(lang, 'st_backends')}"]
    backends = health.get("backends") or []
    if not backends:
        lines.append(t(lang, "st_none"))
    else:
        lines += [
            "| URL | model | state | in flight | capacity | latency ms | last error |",
            "|---|---|---|---|---|---|---|",
        ]
        for b in backends:
            state = t(lang, "st_healthy") if b.get("healthy") else t(lang, "st_down")
            lines.append(
                f"| {b.get('url')} | {b.get('model')} | {state} | {b.get('in_flight', '')} | "
                f"{b.get('capacity', '')} | {b.get('latency_ms') or ''} | "
                f"{escape(str(b.get('last_error') or ''))} |"
            )
    stats = services.stats
    lines += [
        "",
        f"### {t(lang, 'st_queue')}",
        f"- {t(lang, 'st_processing')}: **{stats.processing}** · "
        f"{t(lang, 'st_waiting')}: **{stats.waiting}** · "
        f"{t(lang, 'st_completed')}: **{stats.completed}**",
        f"- {t(lang, 'st_total_time')}: {stats.total_time:.1f} s",
    ]
    return "\n".join(lines)
