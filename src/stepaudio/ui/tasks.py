"""Long recordings on the page: submit them as tasks and follow them until they end.

The task is polled through the service's own task API (``task_client.py``) with the
visitor's own credentials, so a reopened page (``?task=<id>``) shows the same task to the same key
and "not found" to any other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stepaudio.params import ProcessParams
from stepaudio.pipeline.result import ProcessResult
from stepaudio.tasks.status import TaskStatus
from stepaudio.ui.context import UiContext
from stepaudio.ui.i18n import t
from stepaudio.ui.views import View, cleared, error_view, final_view, progress_html


def _error_message(body: dict[str, Any]) -> str:
    err = body.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or err)
    return str(err or body.get("detail") or body)


async def submit_task(
    ctx: UiContext, path: Path, params: ProcessParams, credentials: dict[str, str], lang: str
) -> AsyncIterator[View]:
    yield cleared(progress_html(t(lang, "starting")))
    body = await ctx.tasks.submit(path, params, credentials)
    if body["http_status"] >= 300 or "task_id" not in body:
        yield error_view(t(lang, "error", error=_error_message(body)), "")
        return
    async for view in follow_task(ctx, body["task_id"], credentials, lang):
        yield view


async def follow_task(
    ctx: UiContext, task_id: str, credentials: dict[str, str], lang: str
) -> AsyncIterator[View]:
    """Poll a task until it ends, yielding its progress, then its result."""
    first = True
    while True:
        body = await ctx.tasks.get(task_id, credentials)
        status = body.get("status")
        if body["http_status"] == 404:
            yield error_view(t(lang, "not_found", task=task_id), task_id)
            return
        if body["http_status"] >= 300:
            yield error_view(t(lang, "error", error=_error_message(body)), task_id)
            return
        if status == TaskStatus.COMPLETED:
            try:
                result = ProcessResult.model_validate(body["result"])
            except ValidationError as exc:
                yield error_view(t(lang, "error", error=str(exc)), task_id)
                return
            yield final_view(ctx, result, lang, task_id)
            return
        if status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            text = (
                t(lang, "cancelled")
                if status == TaskStatus.CANCELLED
                else t(lang, "failed", error=_error_message(body))
            )
            yield error_view(text, task_id)
            return
        progress = body.get("progress") or {}
        done, total = int(progress.get("done") or 0), int(progress.get("total") or 0)
        text = (
            t(lang, "pending")
            if status == TaskStatus.PENDING
            else t(lang, "processing", done=done, total=total or "?")
        )
        bar = progress_html(text, done, total)
        if first:
            # A reopened page starts empty: clear what a previous run may have left.
            view = cleared(bar, task_id=task_id, params=body.get("params"))
            first = False
        else:
            view = View(progress=bar, task_id=task_id)
        yield view
        await asyncio.sleep(ctx.poll_s)
