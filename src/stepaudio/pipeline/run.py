"""Process one recording: probe → decode once → plan windows → fan out → merge.

Every request, of any length, goes through here: a short clip is simply one window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio

from stepaudio.audio import SAMPLE_RATE, DecodedAudio, probe
from stepaudio.audio.cut import Span, plan_cuts
from stepaudio.audio.probe import AudioInfo
from stepaudio.config import Settings
from stepaudio.engines.base import Engine, ModelOutput, Usage, WindowJob
from stepaudio.errors import InvalidAudio, OutputTruncated, PayloadTooLarge
from stepaudio.pipeline.merge import merge
from stepaudio.pipeline.params import Mode, ProcessParams
from stepaudio.pipeline.result import ProcessResult


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


ProgressCallback = Callable[[Progress], Awaitable[None] | None]


class WindowStore(Protocol):
    """Where finished windows are kept, so a resumed job does not redo them."""

    async def load(self, index: int) -> ModelOutput | None: ...

    async def save(self, index: int, output: ModelOutput) -> None: ...


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
    missing = info.duration - decoded.duration
    if missing > max(2.0, 0.1 * info.duration):
        raise InvalidAudio(
            f"The file is truncated: its header promises {info.duration:.1f} s "
            f"but only {decoded.duration:.1f} s can be decoded.",
            param="audio",
            code="truncated_audio",
        )


class Pipeline:
    def __init__(self, engine: Engine, settings: Settings):
        self.engine = engine
        self.settings = settings

    @property
    def tmp_dir(self) -> Path:
        return self.settings.data_dir / "tmp"

    async def probe(self, source: Path) -> AudioInfo:
        info = await anyio.to_thread.run_sync(probe, source)
        limit = self.settings.max_audio_seconds
        if limit is not None and info.duration > limit:
            raise PayloadTooLarge(
                f"The audio lasts {info.duration:.0f} s; "
                f"this service accepts at most {limit:.0f} s.",
                param="audio",
                code="audio_too_long",
            )
        return info

    def plan(self, decoded: DecodedAudio, params: ProcessParams) -> list[Span]:
        mode = window_mode(params.mode, self.engine)
        max_len = params.segment_duration or self.engine.max_window_seconds(mode, params)
        return plan_cuts(decoded.samples, decoded.rate, max_len)

    async def process(
        self,
        source: Path,
        params: ProcessParams,
        *,
        on_progress: ProgressCallback | None = None,
        store: WindowStore | None = None,
    ) -> ProcessResult:
        started = time.perf_counter()
        info = await self.probe(source)
        decoded = await anyio.to_thread.run_sync(DecodedAudio.from_file, source, self.tmp_dir)
        with decoded:
            check_decoded(info, decoded)
            spans = await anyio.to_thread.run_sync(self.plan, decoded, params)
            decode_s = time.perf_counter() - started
            outputs = await self._run_windows(decoded, spans, params, on_progress, store)
        merged = await merge(self.engine, params, spans, outputs)
        if merged.truncated:
            raise OutputTruncated(
                "The model's output was cut by max_tokens before it finished; "
                "raise max_tokens or turn thinking off.",
                param="max_tokens",
            )
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
            segments=[s.__dict__ for s in merged.segments],
            language=next((o.language for o in outputs if o.language), None),
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
        )

    async def _run_windows(
        self,
        decoded: DecodedAudio,
        spans: list[Span],
        params: ProcessParams,
        on_progress: ProgressCallback | None,
        store: WindowStore | None,
    ) -> list[ModelOutput]:
        mode = window_mode(params.mode, self.engine)
        limit = min(params.parallel or self.settings.parallel_windows, self.engine.capacity())
        gate = asyncio.Semaphore(max(1, limit))
        done = 0

        async def report(index: int | None = None, output: ModelOutput | None = None) -> None:
            if on_progress is not None:
                span = spans[index] if index is not None else None
                maybe = on_progress(Progress(done, len(spans), "windows", index, output, span))
                if maybe is not None:
                    await maybe

        async def one(index: int, span: Span) -> ModelOutput:
            nonlocal done
            output = await store.load(index) if store else None
            if output is None:
                async with gate:
                    job = WindowJob(mode, decoded.slice(span.start, span.end), span.start, params)
                    output = await self.engine.run_window(job)
                if store:
                    await store.save(index, output)
            done += 1
            await report(index, output)
            return output

        await report()
        tasks = [asyncio.create_task(one(i, s)) for i, s in enumerate(spans)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            # One window failed (or the caller went away): the others are moot.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
