"""A scripted engine: the engine-level ``httpx.MockTransport``.

Tests whose subject is not the model (guards, formats, errors, tasks, the page) run the
real service on this engine: every window is answered by a plain function of the job,
in microseconds, with no model loaded. The default answer describes the audio the
window really held (its length and loudness), so a test can still tell *what* was
decoded and sent, e.g. that a playlist did not smuggle in another file's samples.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.engines.base import ModelOutput, Segment, TextJob, Usage, WindowJob, Word
from stepaudio.params import Mode, ProcessParams


def describe_window(job: WindowJob) -> ModelOutput:
    """``heard 11.00 s, rms 1234`` for the window, as one timed segment; a translation's
    source (what a transcribing engine heard first) is ``said 11.00 s, rms 1234``."""
    seconds = len(job.pcm) / SAMPLE_RATE
    rms = float(np.sqrt(np.mean(job.pcm.astype(np.float64) ** 2))) if len(job.pcm) else 0.0
    text = f"heard {seconds:.2f} s, rms {rms:.0f}"
    source = f"said {seconds:.2f} s, rms {rms:.0f}" if job.mode is Mode.TRANSLATE else None
    return ModelOutput(
        text,
        source=source,
        segments=[Segment(0.0, round(seconds, 3), text)],
        language="en",
        usage=Usage(audio_seconds=seconds, prompt_tokens=1, completion_tokens=len(text.split())),
    )


def worded(job: WindowJob) -> ModelOutput:
    """The window described, its words timed evenly across it as Whisper times them (a
    leading space, in order): for tests of what word times give (speakers split at a
    change of voice, subtitles), not of the model's words."""
    out = describe_window(job)
    [segment] = out.segments
    said = segment.text.split()
    step = segment.end / len(said)
    words = [
        Word(f" {w}", round(i * step, 3), round((i + 0.9) * step, 3), probability=0.9)
        for i, w in enumerate(said)
    ]
    out.segments = [Segment(segment.start, segment.end, segment.text, words=words)]
    return out


def by_second(job: WindowJob) -> ModelOutput:
    """The window in one-second segments (``second 3 of 5.00``): a window with several
    pieces, for tests of text shown as it is heard (``ScriptedEngine.pieces``)."""
    seconds = len(job.pcm) / SAMPLE_RATE
    segments = [
        Segment(float(i), round(min(i + 1.0, seconds), 3), f"second {i + 1} of {seconds:.2f}")
        for i in range(int(np.ceil(seconds)))
    ]
    return ModelOutput(
        " ".join(s.text for s in segments),
        segments=segments,
        language="en",
        usage=Usage(audio_seconds=seconds),
    )


AVG_LOGPROB, COMPRESSION_RATIO, NO_SPEECH_PROB = -0.25, 1.5, 0.125
"""``whisperlike``'s measures of every segment (Whisper's, on the embedded engine)."""


def whisperlike(job: WindowJob, *, leading_space: bool = False) -> ModelOutput:
    """A window's answer as Whisper gives it: one segment with Whisper's measures, the
    temperature it decoded at, its tokens (one per character), and no prompt tokens (the
    face then counts Whisper's encoder positions). A Chinese transcript is in Chinese
    (``听到3.50秒。``), anything else the description of the window, after a space if
    ``leading_space`` (as Whisper writes a segment)."""
    seconds = len(job.pcm) / SAMPLE_RATE
    chinese = job.mode is Mode.ASR and job.params.language == "zh"
    text = f"听到{seconds:.2f}秒。" if chinese else describe_window(job).text
    segment = Segment(
        0.0,
        round(seconds, 3),
        f" {text}" if leading_space and not chinese else text,
        seek=0,
        tokens=list(range(len(text))),
        temperature=job.params.effective_temperature(),
        avg_logprob=AVG_LOGPROB,
        compression_ratio=COMPRESSION_RATIO,
        no_speech_prob=NO_SPEECH_PROB,
    )
    return ModelOutput(
        text,
        segments=[segment],
        language=job.params.language or "en",
        usage=Usage(audio_seconds=seconds),
    )


def echo_prompt(job: TextJob) -> ModelOutput:
    """The text call's answer: the first line of its prompt (summaries, answers)."""
    first = job.prompt.strip().splitlines()[0] if job.prompt.strip() else "nothing"
    return ModelOutput(first[:200], usage=Usage(prompt_tokens=1, completion_tokens=1))


@dataclass
class ScriptedEngine:
    """An ``Engine`` whose model is two functions; it keeps every job it was given."""

    on_window: Callable[[WindowJob], ModelOutput] = describe_window
    on_text: Callable[[TextJob], ModelOutput] = echo_prompt
    delay_s: float = 0.0
    """Seconds each window takes (awaited: the event loop stays free), for tests that
    need requests in flight."""
    window_s: float = 30.0
    slots: int = 2
    name: str = "scripted"
    modes: frozenset[Mode] = frozenset({Mode.ASR, Mode.TRANSLATE})
    pieces: bool = False
    """Report each segment to ``on_heard`` before answering, a tick apart, as an engine
    that decodes a window chunk by chunk does."""
    windows: list[WindowJob] = field(default_factory=list)
    texts: list[TextJob] = field(default_factory=list)

    def audio_modes(self) -> frozenset[Mode]:
        return self.modes

    def max_window_seconds(self, mode: Mode, params: ProcessParams) -> float:
        return self.window_s

    def capacity(self) -> int:
        return self.slots

    def text_budget_chars(self) -> int:
        return 20_000

    async def run_window(self, job: WindowJob) -> ModelOutput:
        # Kept with its own copy of the samples: the service unmaps a window's samples
        # once its request is done, and a test reads the jobs after that.
        job = replace(job, pcm=np.array(job.pcm))
        self.windows.append(job)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        out = self.on_window(job)
        if self.pieces and job.on_heard is not None:
            for segment in out.segments:
                job.on_heard([segment])
                await asyncio.sleep(0.01)
        return out

    async def complete(self, job: TextJob) -> ModelOutput:
        self.texts.append(job)
        return self.on_text(job)

    async def health(self) -> dict[str, Any]:
        return {"engine": self.name, "ready": True}

    async def aclose(self) -> None:
        return None
