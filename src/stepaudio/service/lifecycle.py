"""One request's life, the same for every face: admission → probe → pipeline → metrics →
clean-up.

A face turns what it received into a ``Source`` (a stored file, or PCM samples such as a
live session's turn), opens a ``Run`` with ``Lifecycle.open`` and either awaits its
``result()`` or iterates its ``events()``; whatever happens, leaving the ``open`` block
gives back the admission ticket, removes what the run wrote, and records the outcome.
A stream opens the run before its response begins (so bad audio and a full queue are
still a status, not an event) and holds it to the stream's end (``AsyncExitStack``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stepaudio.audio import SAMPLE_RATE, encode_wav
from stepaudio.errors import BadRequest
from stepaudio.params import ProcessParams
from stepaudio.pipeline.result import ProcessResult
from stepaudio.pipeline.run import Pipeline, Progress, ProgressCallback, WindowStore
from stepaudio.service.admission import Admission, Ticket
from stepaudio.service.metrics import Metrics


@dataclass(frozen=True)
class Pcm:
    """Audio that is not a file: 16-bit mono samples at ``SAMPLE_RATE`` (a live turn)."""

    samples: np.ndarray


Source = Path | Pcm


@dataclass
class Stats:
    """The seed's ``/api/status`` counters: ``waiting`` are admitted requests none of whose
    windows has reached the engine yet, ``processing`` the others."""

    completed: int = 0
    processing: int = 0
    waiting: int = 0
    total_time: float = 0.0


@dataclass
class Run:
    """One admitted request. Use ``result()`` or ``events()``, once."""

    pipeline: Pipeline
    metrics: Metrics
    path: Path
    params: ProcessParams
    face: str
    finished: ProcessResult | None = None

    async def result(
        self,
        *,
        on_progress: ProgressCallback | None = None,
        store: WindowStore | None = None,
        background: bool = False,
    ) -> ProcessResult:
        result = await self.pipeline.process(
            self.path, self.params, on_progress=on_progress, store=store, background=background
        )
        return self._done(result)

    async def events(self) -> AsyncGenerator[Progress | ProcessResult, None]:
        """Progress reports, window outputs in audio order, then the result. Leaving the
        iteration early (a client gone) cancels the work."""
        async with aclosing(self.pipeline.events(self.path, self.params)) as events:
            async for item in events:
                yield self._done(item) if isinstance(item, ProcessResult) else item

    def _done(self, result: ProcessResult) -> ProcessResult:
        self.finished = result
        self.metrics.audio_seconds.labels(self.face).inc(result.usage.audio_seconds)
        return result


ANONYMOUS = "anonymous"
"""Who calls a service without keys (and the CLI): one owner, one voice library."""

VoicePrints = Callable[[str, list[str]], Awaitable[dict[str, np.ndarray]]]
"""A key's voice library: ``(owner, names)`` to their prints (``*``: all)."""


@dataclass
class Lifecycle:
    pipeline: Pipeline
    admission: Admission
    metrics: Metrics = field(default_factory=Metrics)
    voices: VoicePrints | None = None
    """Where requests' ``voices`` are looked up (the task database); None: nowhere."""
    _completed: int = 0
    _total_time: float = 0.0

    @property
    def stats(self) -> Stats:
        admitted = self.admission.count
        waiting = min(self.pipeline.gate.requests_waiting, admitted)
        return Stats(
            completed=self._completed,
            processing=admitted - waiting,
            waiting=waiting,
            total_time=round(self._total_time, 3),
        )

    @asynccontextmanager
    async def open(
        self,
        source: Source,
        params: ProcessParams,
        *,
        face: str,
        owner: str | None = None,
        ticket: Ticket | None = None,
        admit: bool = True,
        probe: bool = False,
    ) -> AsyncIterator[Run]:
        """Admit the request (unless it holds ``ticket`` already, or ``admit`` is off for
        a durable task, which waits in the task queue instead) and give its ``Run``.

        ``probe``: measure the recording before admitting it, for a caller that must
        refuse bad audio before it answers (a stream); processing checks it anyway."""
        if params.voices:
            params = await self._with_prints(params, owner or ANONYMOUS)
        async with self._as_file(source) as path:
            if probe:
                await self.pipeline.probe(path)
            held = ticket or (self.admission.admit(owner) if admit else None)
            mode = params.mode.value
            run = Run(self.pipeline, self.metrics, path, params, face)
            self.metrics.in_flight.inc()
            started = time.perf_counter()
            try:
                yield run
            finally:
                elapsed = time.perf_counter() - started
                if held is not None:
                    held.release()
                self.metrics.in_flight.dec()
                outcome = "success" if run.finished is not None else "error"
                if run.finished is not None:
                    self._completed += 1
                self._total_time += elapsed
                self.metrics.requests.labels(face, mode, outcome).inc()
                self.metrics.seconds.labels(mode).observe(elapsed)

    async def run(
        self,
        source: Source,
        params: ProcessParams,
        *,
        face: str,
        owner: str | None = None,
        ticket: Ticket | None = None,
    ) -> ProcessResult:
        """``open`` and ``result`` in one: the whole answer of a plain request."""
        async with self.open(source, params, face=face, owner=owner, ticket=ticket) as run:
            return await run.result()

    async def _with_prints(self, params: ProcessParams, owner: str) -> ProcessParams:
        """``params`` with its voices' prints, from the caller's own library only."""
        if self.voices is None:
            raise BadRequest("This service keeps no voice library.", param="voices")
        prints = await self.voices(owner, params.voices)
        found = {name: [float(x) for x in vector] for name, vector in prints.items()}
        return params.model_copy(update={"voice_prints": found})

    @asynccontextmanager
    async def _as_file(self, source: Source) -> AsyncIterator[Path]:
        if isinstance(source, Path):
            yield source
            return
        # The pipeline reads files (decoding spills to disk for long audio anyway): the
        # samples become a WAV of our own for the run, removed after it.
        tmp = self.pipeline.tmp_dir
        tmp.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=tmp, prefix="pcm-", suffix=".wav") as f:
            f.write(encode_wav(source.samples, SAMPLE_RATE))
            f.flush()
            yield Path(f.name)
