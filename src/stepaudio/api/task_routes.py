"""Asynchronous tasks over HTTP (the seed's ``/api/task``, made durable), owner-scoped."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from stepaudio.api.auth import caller
from stepaudio.api.forms import process_params
from stepaudio.api.services import Services, get_services
from stepaudio.api.task_bodies import TaskAccepted, TaskList, TaskSummary, TaskView
from stepaudio.api.uploads import save_upload
from stepaudio.errors import BackendUnavailable, InvalidParameter
from stepaudio.params import ProcessParams
from stepaudio.tasks.async_store import AsyncTaskStore
from stepaudio.tasks.outbound import check_url_async
from stepaudio.tasks.outbox import master_secret, owner_secret
from stepaudio.tasks.status import TaskStatus


class QuotaFirstRoute(APIRoute):
    """``POST /api/task`` checks the key's pending-task quota before its body is read: a
    key at its quota gets 429 without uploading anything (FastAPI reads a form before any
    dependency runs, hence a route class)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not self.methods or "POST" not in self.methods or self.path != "/api/task":
            return handler

        async def quota_first(request: Request) -> Response:
            store = request.app.state.services.tasks
            if store is not None:
                who = caller(request)
                await store.check_pending_quota(who)
            return await handler(request)

        return quota_first


router = APIRouter(tags=["tasks"], route_class=QuotaFirstRoute)


def task_store(services: Services = Depends(get_services)) -> AsyncTaskStore:
    if services.tasks is None:
        raise BackendUnavailable("The task store is not available.", code="no_task_store")
    return services.tasks


async def checked_webhook(url: str | None, allow_hosts: list[str]) -> str | None:
    """The URL if it may be called (resolved now: public addresses only, unless its host
    is allowed); checked again at each delivery."""
    if not url:
        return None
    await check_url_async(url, allow_hosts)
    return url


@router.post("/api/task", status_code=202, response_model=TaskAccepted)
async def create_task(
    audio: UploadFile = File(..., description="The recording (any common audio format)"),
    params: ProcessParams = Depends(process_params),
    webhook_url: str | None = Form(
        None,
        description="Called (POST, JSON, signed) when the task completes, fails or is "
        "cancelled; public addresses only",
    ),
    idempotency_key: str | None = Header(
        None, alias="Idempotency-Key", max_length=255, description="Same key: same task"
    ),
    services: Services = Depends(get_services),
    store: AsyncTaskStore = Depends(task_store),
    who: str = Depends(caller),
) -> JSONResponse:
    """Queue a recording; answers 202 once the task and its upload are stored."""
    settings = services.settings
    webhook_url = await checked_webhook(webhook_url, settings.webhooks.allow_hosts)
    up = await save_upload(audio, settings.data_dir / "uploads", settings.limits.max_upload_bytes)
    try:
        # Undecodable or over-long audio is refused now, not found out by a worker later.
        await services.pipeline.probe(up.path)
        task, created = await store.create(
            owner=who,
            params=params.model_dump(mode="json"),
            upload=up.path,
            sha256=up.sha256,
            size=up.size,
            filename=up.filename,
            idempotency_key=idempotency_key or None,
            webhook_url=webhook_url,
        )
    finally:
        up.path.unlink(missing_ok=True)
    headers = {"Location": f"/api/task/{task.task_id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    accepted = TaskAccepted(task_id=task.task_id, status=task.status)
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202, headers=headers)


@router.get("/api/task/{task_id}")
async def get_task(
    task_id: str, store: AsyncTaskStore = Depends(task_store), who: str = Depends(caller)
) -> TaskView:
    """Status, progress (windows done/total), params, timings, and the result or error."""
    return TaskView.from_record(await store.get(task_id, who))


@router.delete("/api/task/{task_id}", response_model=TaskView)
async def cancel_task(
    task_id: str,
    purge: bool = Query(False, description="Remove a finished task and its result for good (204)"),
    store: AsyncTaskStore = Depends(task_store),
    who: str = Depends(caller),
) -> TaskView | Response:
    """Cancel a pending or running task; a finished one is returned unchanged, or with
    ``purge=true`` removed (an unfinished one must be cancelled first: 409)."""
    if purge:
        await store.delete(task_id, who)
        return Response(status_code=204)
    return TaskView.from_record(await store.cancel(task_id, who))


def _status(value: str | None) -> TaskStatus | None:
    """The ``status`` filter (a plain string parameter: a wrong value is our 400, not
    FastAPI's 422)."""
    if value is None:
        return None
    try:
        return TaskStatus(value)
    except ValueError:
        raise InvalidParameter(
            f"status must be one of {', '.join(TaskStatus)}.", param="status"
        ) from None


@router.get("/api/tasks")
async def list_tasks(
    status: str | None = Query(None, description="Only tasks in this status"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=2**31 - 1),
    store: AsyncTaskStore = Depends(task_store),
    who: str = Depends(caller),
) -> TaskList:
    """The caller's tasks, newest first, without their results."""
    tasks = await store.list_tasks(who, status=_status(status), limit=limit, offset=offset)
    return TaskList(
        tasks=[TaskSummary.from_record(t) for t in tasks],
        count=len(tasks),
        limit=limit,
        offset=offset,
    )


@router.get("/api/webhook/secret")
async def webhook_secret(
    store: AsyncTaskStore = Depends(task_store), who: str = Depends(caller)
) -> dict[str, str]:
    """The secret this key's webhook deliveries are signed with (HMAC-SHA256)."""
    master = await store.call(master_secret, store.sync)
    return {"secret": owner_secret(master, who), "algorithm": "HMAC-SHA256"}
