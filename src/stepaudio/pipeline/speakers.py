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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
import numpy as np

from stepaudio.audio import DecodedAudio, DurationCap
from stepaudio.audio.cut import Span
from stepaudio.audio.decode import iter_pcm
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

    def _voices(self, params: ProcessParams) -> dict[str, np.ndarray]:
        """The reference clips' voices (blocking); a clip that is no audio, too long or
        holds no speech is the request's fault."""
        voices = {}
        for name, clip in params.known_speakers.items():
            with tempfile.NamedTemporaryFile(suffix=".ref") as f:
                f.write(clip)
                f.flush()
                try:
                    cap = DurationCap(MAX_REFERENCE_S)
                    pcm = np.concatenate([np.zeros(0, np.int16), *iter_pcm(Path(f.name), cap=cap)])
                except StepAudioError as exc:
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
                known=self._voices(params),
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
