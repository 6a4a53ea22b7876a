"""Process one recording: probe → decode once → plan windows → fan out → merge.

Every request, of any length, goes through here: a short clip is simply one window.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import anyio

from stepaudio.audio import SAMPLE_RATE, DecodedAudio, DurationCap, inspect, probe
from stepaudio.audio.cut import Span, plan_cuts
from stepaudio.audio.measure import check_complete
from stepaudio.audio.probe import AudioInfo
from stepaudio.config import RetryPolicy, Settings
from stepaudio.engines.base import Engine, ModelOutput, Segment, Usage, WindowJob
from stepaudio.engines.chinese_script import punctuated_output
from stepaudio.errors import InvalidAudio, OutputTruncated, StepAudioError
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline import output_guard
from stepaudio.pipeline.merge import languages_spoken, merge
from stepaudio.pipeline.result import ProcessResult
from stepaudio.pipeline.scheduler import BACKGROUND, LONG, SHORT, FairGate, Lease, balanced_cuts
from stepaudio.pipeline.speakers import Speakers
from stepaudio.text import join_texts


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    stage: str
    index: int | None = None
    """The window that just finished (None for the initial report)."""
    output: ModelOutput | None = None
    """Its output, for callers that stream results window by window."""
    span: Span | None = None
    """Where that window lies in the recording (its segments' times are relative to it)."""
    heard: bool = False
    """``output`` is a piece of window ``index`` heard so far (stage ``heard``), not the
    window's whole output: shown until the window's own report replaces it."""


ProgressCallback = Callable[[Progress], Awaitable[None] | None]


def _deliver(on_progress: ProgressCallback, progress: Progress) -> None:
    """A report made outside a coroutine: an asynchronous callback runs as a task."""
    maybe = on_progress(progress)
    if maybe is not None:
        asyncio.ensure_future(maybe)


class _InAudioOrder:
    """Reorders finished windows (they finish out of order when parallel) into audio order.

    Every report still counts at once (``done`` moves the bar); a window's output is
    passed on only once all the windows before it have been."""

    def __init__(self) -> None:
        self._held: dict[int, Progress] = {}
        self._pieces: dict[int, list[Progress]] = {}
        self._next = 0

    def feed(self, progress: Progress) -> list[Progress]:
        if progress.index is None or progress.output is None:
            return [progress]
        if progress.heard:
            if progress.index < self._next or progress.index in self._held:
                return []  # the window's own text is out, or waiting: pieces are moot
            if progress.index == self._next:
                return [progress]
            # A window further on: its pieces wait for the windows before it.
            self._pieces.setdefault(progress.index, []).append(progress)
            return []
        self._held[progress.index] = progress
        self._pieces.pop(progress.index, None)
        ready = []
        while self._next in self._held:
            ready.append(replace(self._held.pop(self._next), done=progress.done))
            self._next += 1
            ready += self._pieces.pop(self._next, [])
        # Out of order: a count-only report, its output waits for the windows before it.
        return ready or [Progress(progress.done, progress.total, progress.stage)]


class WindowStore(Protocol):
    """Where finished windows are kept, so a resumed job does not redo them.

    A window is known by its index *and* its span: a job resumed where the plan came out
    differently (another worker's settings or backends) must not reuse another window's
    output, so ``load`` answers None unless the span matches."""

    async def load(self, index: int, span: Span) -> ModelOutput | None: ...

    async def save(self, index: int, span: Span, output: ModelOutput) -> None: ...


def window_mode(mode: Mode, engine: Engine) -> Mode:
    """The mode each window runs in: s2t and text modes the engine cannot do on audio
    are transcribed first and finished with text calls."""
    if mode is Mode.S2T or mode not in engine.audio_modes():
        return Mode.ASR
    return mode


def check_decoded(info: AudioInfo, decoded: DecodedAudio) -> None:
    """Refuse audio that decodes to nothing or to far less than its header promises."""
    if decoded.n_samples < SAMPLE_RATE // 100:
        raise InvalidAudio("The file holds no decodable audio.", param="audio")
    check_complete(info.duration, decoded.duration)


class Pipeline:
    def __init__(self, engine: Engine, settings: Settings, *, retry: RetryPolicy | None = None):
        self.engine = engine
        self.settings = settings
        # One gate for every request of this pipeline: a short request gets the next
        # free slot even while a long job has many windows waiting (scheduler.py).
        self.gate = FairGate(engine.capacity, sync_first=settings.pipeline.sync_first)
        self.retry = retry or settings.pipeline.window_retry
        """Attempts of a window that failed with a retryable error, each one engine call
        (which the pool may itself try on several backends)."""
        self.speakers = Speakers()
        """Diarization (``params.diarize``), its models loaded on first use."""

    @property
    def tmp_dir(self) -> Path:
        return self.settings.data_dir / "tmp"

    async def probe(self, source: Path) -> AudioInfo:
        """What the recording is, its duration counted within the limits (not the header's).

        For callers that do not decode now (audio info, task submission, the web page):
        over-long, lying, truncated and undecodable files are refused here, cheaply."""
        return await anyio.to_thread.run_sync(
            inspect, source, self.settings.limits.max_audio_seconds
        )

    async def decode(self, source: Path) -> tuple[AudioInfo, DecodedAudio]:
        """The header, then the samples, decoded once and never past the limits."""
        info = await anyio.to_thread.run_sync(probe, source)
        cap = DurationCap(self.settings.limits.max_audio_seconds, info.duration)
        # An honest header over the limit is refused before any decoding.
        cap.check_header()
        decoded = await anyio.to_thread.run_sync(
            lambda: DecodedAudio.from_file(source, self.tmp_dir, cap=cap)
        )
        return info, decoded

    def window_limit(self, params: ProcessParams) -> int:
        """Windows of one request that may run at once."""
        return max(
            1, params.parallel or self.settings.pipeline.parallel_windows or self.engine.capacity()
        )

    def plan(self, decoded: DecodedAudio, params: ProcessParams) -> list[Span]:
        mode = window_mode(params.mode, self.engine)
        max_len = self.engine.max_window_seconds(mode, params)
        if params.segment_duration:
            # Clamped, not refused: the seed's clients pass long values (1800) meaning "as
            # large as you can"; a window past the engine's largest would only cost memory
            # (Whisper's features of a 20-minute window: ~1 GB) or overflow the context.
            return plan_cuts(decoded.samples, decoded.rate, min(params.segment_duration, max_len))
        if mode.verbatim:
            # Verbatim windows may be shorter at no loss: fill whole waves of the slots.
            slots = min(self.window_limit(params), self.engine.capacity())
            return balanced_cuts(decoded.samples, decoded.rate, max_len, slots)
        return plan_cuts(decoded.samples, decoded.rate, max_len)

    async def process(
        self,
        source: Path,
        params: ProcessParams,
        *,
        on_progress: ProgressCallback | None = None,
        store: WindowStore | None = None,
        background: bool = False,
        heard: bool = False,
    ) -> ProcessResult:
        """``background``: a durable task's run, whose windows wait behind those of
        requests someone is waiting on (``sync_first``). ``heard``: someone reads along;
        ``on_progress`` also gets each window's text piece by piece (``Progress.heard``)
        where the engine decodes that way."""
        started = time.perf_counter()
        info, decoded = await self.decode(source)
        with decoded:
            check_decoded(info, decoded)
            spans = await anyio.to_thread.run_sync(self.plan, decoded, params)
            # Planning read the pauses all over the recording (wave balancing tries several
            # cuts): drop those pages, each window maps only its own while it runs.
            decoded.release(0.0, decoded.duration)
            decode_s = time.perf_counter() - started
            # Speakers are found on the whole recording, beside the windows.
            async with self.speakers.alongside(decoded, params) as speakers:
                outputs = await self._run_windows(
                    decoded, spans, speakers.window_params, on_progress, store, background, heard
                )
                timeline = await speakers.turns()
        outputs = self.speakers.label(outputs, spans, timeline)
        merged = await merge(self.engine, params, spans, outputs)
        segments, warnings = self.speakers.finish(merged.segments, params, timeline)
        if merged.truncated:
            raise OutputTruncated(
                "The model's output was cut by max_tokens before it finished; "
                "raise max_tokens or turn thinking off.",
                param="max_tokens",
            )
        spoken = languages_spoken(outputs)
        windows_said = [w for o in outputs for w in o.warnings]
        usage = Usage()
        for out in [*outputs, *merged.extra]:
            usage.add(out.usage)
        usage.audio_seconds = round(decoded.duration, 3)
        total = time.perf_counter() - started
        return ProcessResult(
            answer=merged.answer,
            thinking=merged.thinking,
            full_response=merged.full_response,
            elapsed_time=round(total, 3),
            mode=params.mode,
            transcript=merged.transcript,
            summary=merged.summary,
            segments=[s.__dict__ for s in segments],
            language=spoken[0] if spoken else None,
            languages=spoken,
            audio={**info.to_dict(), "decoded_duration": round(decoded.duration, 3)},
            usage=usage.__dict__,
            timings={
                "decode": round(decode_s, 3),
                "model": round(total - decode_s, 3),
                "total": round(total, 3),
            },
            engine=self.engine.name,
            windows=len(spans),
            params=params.model_dump(mode="json"),
            citations=[c.__dict__ for c in merged.citations],
            warnings=list(dict.fromkeys([*merged.warnings, *warnings, *windows_said])),
        )

    async def events(
        self, source: Path, params: ProcessParams
    ) -> AsyncGenerator[Progress | ProcessResult, None]:
        """``process`` as a stream: progress reports, window outputs in audio order, then
        the result; for callers that show or stream windows as they finish (the OpenAI
        streaming route, the web page).

        Errors are raised from the iteration; leaving it early (a client gone) cancels
        the work."""
        queue: asyncio.Queue[Progress | None] = asyncio.Queue()
        work = asyncio.create_task(
            self.process(source, params, on_progress=queue.put_nowait, heard=True)
        )
        # Reports are queued before the work ends, so the end mark comes after them all.
        work.add_done_callback(lambda _: queue.put_nowait(None))
        order = _InAudioOrder()
        try:
            while (progress := await queue.get()) is not None:
                for event in order.feed(progress):
                    yield event
            yield work.result()
        finally:
            if not work.done():
                work.cancel()
                await asyncio.wait({work})

    async def _run_windows(
        self,
        decoded: DecodedAudio,
        spans: list[Span],
        params: ProcessParams,
        on_progress: ProgressCallback | None,
        store: WindowStore | None,
        background: bool = False,
        heard: bool = False,
    ) -> list[ModelOutput]:
        mode = window_mode(params.mode, self.engine)
        done = 0

        def written(output: ModelOutput) -> ModelOutput:
            """Mandarin punctuated, whichever engine heard it (live turns: verbatim)."""
            return output if params.verbatim else punctuated_output(output)

        loop = asyncio.get_running_loop()

        def reader(index: int) -> Callable[[list[Segment]], None] | None:
            """Passes window ``index``'s pieces, from the engine's thread, to the loop."""
            if not heard or on_progress is None:
                return None
            span = spans[index]

            def on_heard(segments: list[Segment]) -> None:
                piece = written(
                    ModelOutput(join_texts(s.text for s in segments), segments=segments)
                )
                progress = Progress(done, len(spans), "heard", index, piece, span, heard=True)
                # A loop gone (the service stopping) has nobody reading along.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(lambda: _deliver(on_progress, progress))

            return on_heard

        async def report(index: int | None = None, output: ModelOutput | None = None) -> None:
            if on_progress is not None:
                span = spans[index] if index is not None else None
                maybe = on_progress(Progress(done, len(spans), "windows", index, output, span))
                if maybe is not None:
                    await maybe

        async def attempt(lease: Lease, index: int, span: Span) -> ModelOutput:
            for attempt in range(1, self.retry.attempts + 1):
                try:
                    async with lease.slot():
                        job = WindowJob(
                            mode,
                            decoded.slice(span.start, span.end),
                            span.start,
                            params,
                            on_heard=reader(index),
                        )
                        # A looping output gets one steadier retry, then a 502.
                        return written(await output_guard.run_window(self.engine, job))
                except StepAudioError as exc:
                    # The error's own policy: the backend's fault, not the request's.
                    if not (exc.retryable and self.retry.again(attempt)):
                        raise
                # Only this window runs again, after a pause, queued fairly like any other.
                await asyncio.sleep(self.retry.delay(attempt))
            raise AssertionError("unreachable")

        async def one(lease: Lease, index: int, span: Span) -> ModelOutput:
            nonlocal done
            output = await store.load(index, span) if store else None
            if output is None:
                try:
                    output = await attempt(lease, index, span)
                finally:
                    # Its samples are not read again: drop their pages from the process
                    # (an hour decoded is ~110 MB of map otherwise held to the end).
                    decoded.release(span.start, span.end)
                if store:
                    await store.save(index, span, output)
            done += 1
            await report(index, output)
            return output

        await report()
        lane = BACKGROUND if background else SHORT if len(spans) == 1 else LONG
        async with self.gate.session(
            self.window_limit(params), lane=lane, wide=params.draft
        ) as lease:
            tasks = [asyncio.create_task(one(lease, i, s)) for i, s in enumerate(spans)]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                # One window failed (or the caller went away): the others are moot.
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
