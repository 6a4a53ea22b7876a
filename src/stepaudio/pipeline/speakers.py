"""The pipeline's speaker stage: diarization beside the windows, then speakers and word
times onto the merged segments.

Diarization runs in the gateway on the decoded audio, whatever engine transcribes (the
embedded Whisper or Step-Audio backends), in a worker thread behind its own limiter,
while the windows are being transcribed.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
import numpy as np

from stepaudio.audio import DecodedAudio, DurationCap
from stepaudio.audio.cut import Span
from stepaudio.audio.decode import SAMPLE_RATE, iter_pcm
from stepaudio.diarize.assign import Turn, assign
from stepaudio.diarize.diarizer import Diarizer
from stepaudio.engines.base import ModelOutput, Segment
from stepaudio.errors import InvalidParameter, StepAudioError
from stepaudio.params import ProcessParams
from stepaudio.pipeline import words

MAX_REFERENCE_S = 60.0
"""Longest reference clip: enough for a voice print many times over."""
REFERENCES = "known_speaker_references"
"""The field the reference clips come in (OpenAI's name)."""
NO_SPEECH_FOR_SPEAKERS = "diarize: no speech was found for speaker analysis"
NO_SEGMENTS_FOR_SPEAKERS = (
    "diarize: the engine answered {mode} on the audio itself, with no timed transcript "
    "to label; ask for asr or s2t to see who said what"
)


MIN_SAMPLE_SPEECH_S = 2.0
"""Least speech a voice library sample must hold: below, a print is mostly noise."""


def _enough(vector: np.ndarray | None, speech_s: float, param: str) -> tuple[np.ndarray, float]:
    if vector is None or speech_s < MIN_SAMPLE_SPEECH_S:
        raise InvalidParameter(
            f"The sample holds {speech_s:.1f} s of speech; a voice needs at least "
            f"{MIN_SAMPLE_SPEECH_S:.0f} s (5 to 30 s of one person talking is best).",
            param=param,
            code="too_little_speech",
        )
    return vector, speech_s


def reference_pcm(path: Path, param: str) -> np.ndarray:
    """A reference or sample file as 16-kHz samples (blocking), at most
    ``MAX_REFERENCE_S`` of it: anything else is an ``InvalidParameter`` naming ``param``."""
    try:
        cap = DurationCap(MAX_REFERENCE_S)
        return np.concatenate([np.zeros(0, np.int16), *iter_pcm(path, cap=cap)])
    except StepAudioError as exc:
        raise InvalidParameter(
            f"Not a usable voice sample: {exc.message}", param=param, code=exc.code
        ) from exc


def spans_pcm(path: Path, spans: list[tuple[float, float]], limit_s: float) -> np.ndarray:
    """The samples of a recording within ``spans`` (seconds), joined, at most ``limit_s``
    of them (blocking; the recording is read once, as a stream)."""
    wanted = sorted(spans)
    parts: list[np.ndarray] = []
    taken, at = 0, 0
    limit = int(limit_s * SAMPLE_RATE)
    for chunk in iter_pcm(path):
        end = at + chunk.size
        for a, b in wanted:
            lo, hi = max(at, int(a * SAMPLE_RATE)), min(end, int(b * SAMPLE_RATE))
            if hi > lo and taken < limit:
                piece = chunk[lo - at : hi - at][: limit - taken]
                parts.append(piece)
                taken += piece.size
        at = end
        if taken >= limit or (wanted and at >= wanted[-1][1] * SAMPLE_RATE):
            break
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)


@dataclass
class Running:
    """One request's speaker analysis while its windows run."""

    window_params: ProcessParams
    """The windows' parameters: with word times asked of the engine when diarizing, so
    a segment holding two voices can be split where the speaker changes."""
    task: asyncio.Task[list[Turn]] | None

    async def turns(self) -> list[Turn] | None:
        return None if self.task is None else await self.task


class Speakers:
    def __init__(self, threads: int = 1, concurrent: int = 1):
        self.diarizer = Diarizer(threads)
        self._slots = anyio.CapacityLimiter(concurrent)

    async def _printed(self, load: Callable[[], np.ndarray]) -> tuple[np.ndarray | None, float]:
        """The voice print of what ``load`` reads (in the worker thread, beside the
        diarizations: one limiter) and its seconds of speech."""
        return await anyio.to_thread.run_sync(
            lambda: self.diarizer.voice_print(load()), limiter=self._slots
        )

    async def voice_print(self, path: Path, param: str) -> tuple[np.ndarray, float]:
        """A sample's voice print and its seconds of speech, for the voice library; a
        file that is no audio, is longer than ``MAX_REFERENCE_S``, holds too little speech
        (silence, music, a breath) is the caller's fault, named ``param``."""
        return _enough(*await self._printed(lambda: reference_pcm(path, param)), param)

    async def voice_print_of(
        self, path: Path, spans: list[tuple[float, float]], param: str
    ) -> tuple[np.ndarray, float]:
        """The voice print of one speaker of a recording, from where they talk."""
        found = await self._printed(lambda: spans_pcm(path, spans, MAX_REFERENCE_S))
        return _enough(*found, param)

    async def voice_of(self, pcm: np.ndarray) -> tuple[np.ndarray | None, float]:
        """The voice print of 16-kHz samples and their seconds of speech (a live turn)."""
        return await self._printed(lambda: pcm)

    def _voices(self, params: ProcessParams) -> dict[str, np.ndarray]:
        """The reference clips' voices (blocking); a clip that is no audio, too long or
        holds no speech is the request's fault."""
        voices = {}
        for name, clip in params.known_speakers.items():
            with tempfile.NamedTemporaryFile(suffix=".ref") as f:
                f.write(clip)
                f.flush()
                try:
                    pcm = reference_pcm(Path(f.name), REFERENCES)
                except InvalidParameter as exc:
                    raise InvalidParameter(
                        f"The reference clip of {name!r} is not usable: {exc.message}",
                        param=REFERENCES,
                    ) from exc
            voice = self.diarizer.voice(pcm)
            if voice is None:
                raise InvalidParameter(
                    f"The reference clip of {name!r} holds no speech.", param=REFERENCES
                )
            voices[name] = voice
        return voices

    async def turns(
        self,
        decoded: DecodedAudio,
        params: ProcessParams,
        stop: threading.Event | None = None,
    ) -> list[Turn]:
        def run() -> list[Turn]:
            return self.diarizer(
                decoded.samples,
                num=params.num_speakers,
                low=params.min_speakers,
                high=params.max_speakers,
                known={
                    **self._voices(params),
                    **{n: np.asarray(v, np.float32) for n, v in params.voice_prints.items()},
                },
                stop=stop,
            )

        try:
            return await anyio.to_thread.run_sync(run, limiter=self._slots)
        except (ImportError, RuntimeError, OSError) as exc:
            # A missing or broken model install: the service's fault, said plainly.
            raise StepAudioError(
                f"Speaker diarization is not available: {exc}", code="diarization_error"
            ) from exc

    @asynccontextmanager
    async def alongside(
        self, decoded: DecodedAudio, params: ProcessParams
    ) -> AsyncIterator[Running]:
        """Starts the analysis of ``decoded`` (if asked for) and, on leaving, waits for
        its thread: the samples must outlive every reader of them."""
        if not params.diarize:
            yield Running(params, None)
            return
        stop = threading.Event()
        task = asyncio.create_task(self.turns(decoded, params, stop))
        try:
            yield Running(params.model_copy(update={"word_timestamps": True}), task)
        finally:
            if not task.done():
                stop.set()  # the thread ends at its next block; cancel() alone waits for it
                task.cancel()
            await asyncio.wait({task})
            if not task.cancelled():
                # Retrieved here when the windows failed first (their error wins).
                task.exception()

    @staticmethod
    def label(
        outputs: list[ModelOutput], spans: list[Span], timeline: list[Turn] | None
    ) -> list[ModelOutput]:
        """The windows' outputs with speakers on their segments (times stay the
        window's), before they are merged: the transcript handed to the text model for
        summaries and answers then says who speaks."""
        if not timeline:
            return outputs
        labelled = []
        for out, span in zip(outputs, spans, strict=True):
            whole = [words.settle(s.shifted(span.start)) for s in out.segments]
            back = [s.shifted(-span.start) for s in assign(whole, timeline)]
            labelled.append(replace(out, segments=back))
        return labelled

    @staticmethod
    def finish(
        segments: list[Segment], params: ProcessParams, timeline: list[Turn] | None
    ) -> tuple[list[Segment], list[str]]:
        """Segments as the result carries them (speakers, word times as asked) and the
        warnings for what could not be given."""
        warnings: list[str] = []
        if params.diarize:
            tidy = [words.settle(s) for s in segments]
            if not segments:
                warnings.append(NO_SEGMENTS_FOR_SPEAKERS.format(mode=params.mode.value))
            elif not timeline:
                warnings.append(NO_SPEECH_FOR_SPEAKERS)
            segments = assign(tidy, timeline or [])
        segments, missing = words.finish(segments, wanted=params.word_timestamps)
        return segments, warnings + missing
