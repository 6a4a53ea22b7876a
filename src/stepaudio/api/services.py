"""What the routes share: settings, engine, pipeline, the request lifecycle. One per app,
no globals.

Every HTTP face processes a recording through ``process`` (one answer) or ``stream``
(events as they come): the upload is stored under our own name, the request admitted
once (the guard's ticket, else here), processed, counted, and cleaned up, whatever the
face; the face only turns the result or the events into its own wire format.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from fastapi.responses import StreamingResponse

from stepaudio.api.auth import caller
from stepaudio.api.disconnect import unless_disconnected
from stepaudio.api.uploads import Readable, StoredUpload, in_client_terms, temporary_upload
from stepaudio.config import Settings
from stepaudio.engines.base import Engine
from stepaudio.errors import StepAudioError
from stepaudio.live.state import LiveState
from stepaudio.params import ProcessParams
from stepaudio.pipeline.result import ProcessResult
from stepaudio.pipeline.run import Pipeline
from stepaudio.service import Lifecycle, Metrics, Run, Ticket
from stepaudio.service.lifecycle import Stats
from stepaudio.tasks.async_store import AsyncTaskStore

log = logging.getLogger(__name__)

StreamBody = Callable[[Run], AsyncIterator[str]]
"""A face's stream: its wire format of a run's events (``Run.events()``)."""
ErrorEvent = Callable[[StepAudioError], str]
"""A face's error event, for a failure after its stream began."""


def ticket_of(request: Request) -> Ticket | None:
    """The admission the guard took for this request from its first header, if any."""
    return getattr(request.state, "ticket", None)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    pipeline: Pipeline
    lifecycle: Lifecycle
    tasks: AsyncTaskStore | None = None
    """The durable task store (set by the app's lifespan)."""
    live: LiveState | None = None
    """What live sessions share (``api/realtime.py`` makes it on first use)."""
    started_at: float = field(default_factory=time.time)

    @property
    def metrics(self) -> Metrics:
        return self.lifecycle.metrics

    @property
    def stats(self) -> Stats:
        return self.lifecycle.stats

    @asynccontextmanager
    async def scratch_file(self) -> AsyncIterator[Path]:
        """A file name of our own under ``data_dir`` for the block, removed after it."""
        folder = self.settings.data_dir / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"scratch-{uuid.uuid4().hex}"
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    @asynccontextmanager
    async def stored(self, upload: Readable | None) -> AsyncIterator[StoredUpload]:
        """The upload as our own file for the block (``temporary_upload``)."""
        settings = self.settings
        async with temporary_upload(
            upload, settings.data_dir / "uploads", settings.limits.max_upload_bytes
        ) as up:
            yield up

    async def process(
        self, request: Request, upload: Readable | None, params: ProcessParams, *, face: str
    ) -> ProcessResult:
        """The whole answer; the work is cancelled if the client goes away."""
        async with (
            self.stored(upload) as up,
            self.lifecycle.open(
                up.path, params, face=face, owner=caller(request), ticket=ticket_of(request)
            ) as run,
        ):
            return await unless_disconnected(request, run.result())

    async def stream(
        self,
        request: Request,
        upload: Readable | None,
        params: ProcessParams,
        *,
        face: str,
        body: StreamBody,
        on_error: ErrorEvent,
        media_type: str = "text/event-stream",
    ) -> StreamingResponse:
        """Events as they come. Bad audio and a full queue are refused with a status
        before the stream begins; a failure after that is ``on_error``'s event, whatever
        the exception (the status line is gone). The upload and the place in the queue
        are held to the stream's end; a client that goes away cancels the work."""
        async with AsyncExitStack() as stack:
            up = await stack.enter_async_context(self.stored(upload))
            run = await stack.enter_async_context(
                self.lifecycle.open(
                    up.path,
                    params,
                    face=face,
                    owner=caller(request),
                    ticket=ticket_of(request),
                    probe=True,
                )
            )
            held = stack.pop_all()

        async def events() -> AsyncIterator[str]:
            async with held:
                try:
                    async for chunk in body(run):
                        yield chunk
                except StepAudioError as exc:
                    yield on_error(in_client_terms(exc, up))
                except Exception as exc:
                    log.exception("stream of %s failed", request.url.path)
                    yield on_error(StepAudioError(f"Internal error: {type(exc).__name__}"))

        return StreamingResponse(events(), media_type=media_type)


def get_services(request: Request) -> Services:
    return request.app.state.services


def model_label(services: Services) -> str:
    """The model name the API reports (seed routes and OpenAI's ``/v1/models``): the
    first backend's model, else the engine's name."""
    if services.settings.all_backends():
        return services.settings.all_backends()[0].model
    return services.engine.name
