"""``create_app()``: the whole HTTP service, built from one ``Settings``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from stepaudio import __version__
from stepaudio.api import (
    errors,
    openai_audio,
    openai_chat,
    realtime,
    realtime_translation,
    render,
    seed,
    task_routes,
    voices,
    wyoming,
)
from stepaudio.api.guard import GuardMiddleware
from stepaudio.api.services import Services
from stepaudio.api.sessions import PageSessions
from stepaudio.config import Settings
from stepaudio.engines.base import Engine
from stepaudio.engines.factory import build_engine
from stepaudio.pipeline.run import Pipeline
from stepaudio.service import Admission, Lifecycle
from stepaudio.tasks import AsyncTaskStore, WorkerPool


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app. ``engine`` replaces the one the settings would choose (tests, benches)."""
    settings = settings or Settings()
    # One count of the work in the service, shared by the guard (uploads, from their
    # first header) and every face's lifecycle.
    admission = Admission(
        settings.limits.max_pending_requests,
        settings.limits.max_pending_requests_per_key if settings.api_keys else None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        chosen = engine or build_engine(settings)
        pipeline = Pipeline(chosen, settings)
        store = await AsyncTaskStore.open(settings)  # migrates
        lifecycle = Lifecycle(pipeline, admission, voices=store.voice_prints)
        app.state.services = Services(settings, chosen, pipeline, lifecycle, tasks=store)
        workers = WorkerPool(store, lifecycle, settings, settings.tasks.workers)
        workers.start()
        wyoming_server = await wyoming.start(app.state.services)
        try:
            yield
        finally:
            if wyoming_server is not None:
                await wyoming_server.stop()
            await workers.stop()  # running tasks are handed back, not left running
            store.close()
            if engine is None:
                await chosen.aclose()

    app = FastAPI(
        title="stepaudio",
        version=__version__,
        description="Transcripts, summaries, translations and answers about recordings "
        "of any length, on Step-Audio-R1.1 backends or on the CPU.",
        lifespan=lifespan,
    )
    sessions = PageSessions(
        lambda: getattr(getattr(app.state, "services", None), "tasks", None),
        settings.page_session_hours * 3600,
    )
    app.state.sessions = sessions
    # Outermost of ours: keys, admission and body limits before any route sees a byte.
    app.add_middleware(GuardMiddleware, settings=settings, admission=admission, sessions=sessions)
    errors.install(app)
    app.include_router(seed.router)
    app.include_router(task_routes.router)
    app.include_router(render.router)
    app.include_router(voices.router)
    app.include_router(realtime.router)
    app.include_router(realtime_translation.router)
    app.include_router(openai_audio.router)
    app.include_router(openai_chat.router)
    if settings.ui:
        from stepaudio.ui import mount_ui

        mount_ui(app, settings, sessions)  # the web page at /ui; / leads there
    return app
