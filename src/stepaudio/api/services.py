"""What the routes share: settings, engine, pipeline, counters. One per app, no globals."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import Request
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as MetricCounter

from stepaudio.config import Settings
from stepaudio.engines.base import Engine
from stepaudio.errors import QueueFull
from stepaudio.pipeline.run import Pipeline
from stepaudio.tasks.async_store import AsyncTaskStore


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = MetricCounter(
            "stepaudio_requests", "Processing requests", ["mode", "outcome"], registry=self.registry
        )
        self.seconds = Histogram(
            "stepaudio_request_seconds",
            "Processing time per request",
            ["mode"],
            buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
            registry=self.registry,
        )
        self.audio_seconds = MetricCounter(
            "stepaudio_audio_seconds", "Audio processed, in seconds", registry=self.registry
        )
        self.in_flight = Gauge(
            "stepaudio_in_flight", "Requests being processed", registry=self.registry
        )


@dataclass
class Stats:
    """The seed's ``/api/status`` counters: ``waiting`` are admitted requests none of whose
    windows has reached the engine yet, ``processing`` the others."""

    completed: int = 0
    processing: int = 0
    waiting: int = 0
    total_time: float = 0.0


@dataclass
class Services:
    settings: Settings
    engine: Engine
    pipeline: Pipeline
    metrics: Metrics = field(default_factory=Metrics)
    tasks: AsyncTaskStore | None = None
    """The durable task store (set by the app's lifespan)."""
    started_at: float = field(default_factory=time.time)
    admitted_now: int = 0
    admitted_by_owner: Counter[str] = field(default_factory=Counter)

    @property
    def stats(self) -> Stats:
        waiting = min(self.pipeline.gate.requests_waiting, self.admitted_now)
        return Stats(
            completed=self._completed,
            processing=self.admitted_now - waiting,
            waiting=waiting,
            total_time=round(self._total_time, 3),
        )

    _completed: int = 0
    _total_time: float = 0.0

    @asynccontextmanager
    async def admitted(self, mode: str, owner: str | None = None) -> AsyncIterator[None]:
        """Count a request from admission to its end; 429 past ``max_pending_requests``,
        or past ``max_pending_requests_per_key`` for ``owner`` (with keys set).

        Windows of admitted requests share the engine through the pipeline's fair gate,
        so there is no second queue here."""
        settings = self.settings
        limit = settings.max_pending_requests
        if self.admitted_now >= limit:
            raise QueueFull(f"{limit} requests are already queued or running; retry later.")
        per_key = settings.max_pending_requests_per_key if settings.api_keys else None
        if owner is not None and per_key is not None:
            if self.admitted_by_owner[owner] >= per_key:
                raise QueueFull(
                    f"This key already has {per_key} requests queued or running; retry later.",
                    code="key_queue_full",
                )
            self.admitted_by_owner[owner] += 1
        self.admitted_now += 1
        self.metrics.in_flight.inc()
        started = time.perf_counter()
        outcome = "error"
        try:
            yield
            outcome = "success"
            self._completed += 1
        finally:
            elapsed = time.perf_counter() - started
            self.admitted_now -= 1
            if owner is not None and per_key is not None:
                self.admitted_by_owner[owner] -= 1
                if not self.admitted_by_owner[owner]:
                    del self.admitted_by_owner[owner]
            self._total_time += elapsed
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(mode, outcome).inc()
            self.metrics.seconds.labels(mode).observe(elapsed)


def get_services(request: Request) -> Services:
    return request.app.state.services


def model_label(services: Services) -> str:
    """The model name the API reports (seed routes and OpenAI's ``/v1/models``): the
    first backend's model, else the engine's name."""
    if services.settings.all_backends():
        return services.settings.all_backends()[0].model
    return services.engine.name
