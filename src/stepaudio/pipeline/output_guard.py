"""No degenerate output returned as success, whatever the engine.

Every window's output and every text call's answer passes through here: a repetition
loop (or a transcript holding more words than its audio can) earns one retry with
steadier decoding (higher repetition penalty, greedy; Whisper without conditioning on
its previous text); a second bad answer is refused with ``DegenerateOutput`` (502).
"""

from __future__ import annotations

from dataclasses import replace

from stepaudio.audio import SAMPLE_RATE
from stepaudio.engines.base import Engine, ModelOutput, Segment, TextJob, WindowJob
from stepaudio.engines.degenerate import find_loop, implausible_rate, max_repeats_in
from stepaudio.errors import DegenerateOutput
from stepaudio.params import Mode, ProcessParams

RETRY_PENALTY = 1.2
"""Repetition penalty of the retry: enough to leave a loop, not so much that a model
avoids the words a faithful answer must repeat."""
_CHUNK_S = 30.0
"""Whisper decodes 30 s at a time; a loop fills one such stretch, so rates are checked
per stretch, not diluted over a long window."""


def steadier(params: ProcessParams) -> ProcessParams:
    """The request's parameters for a retry after a loop."""
    return params.model_copy(
        update={
            "repetition_penalty": max(params.repetition_penalty, RETRY_PENALTY),
            "temperature": 0.0,
        }
    )


def _transcript_problem(segments: list[Segment], text: str, seconds: float) -> str | None:
    if implausible_rate(text, seconds):
        return f"{len(text)} characters of transcript for {seconds:.1f} s of audio"
    stretches: dict[int, list[str]] = {}
    for s in segments:
        if s.end - s.start > _CHUNK_S:
            # A segment over several stretches (Step-Audio gives one for the whole window)
            # holds their speech: its own length is the measure, not its first stretch's.
            if implausible_rate(s.text, s.end - s.start):
                return f"more words than speech can hold in {s.start:.0f}-{s.end:.0f} s"
            continue
        stretches.setdefault(int(s.start // _CHUNK_S), []).append(s.text)
    for index, texts in stretches.items():
        length = min(_CHUNK_S, max(1.0, seconds - index * _CHUNK_S))
        if implausible_rate(" ".join(texts), length):
            return f"more words than speech can hold near {index * _CHUNK_S:.0f} s"
    return None


def window_problem(job: WindowJob, out: ModelOutput) -> str | None:
    """What is wrong with a window's output, or None."""
    seconds = job.pcm.size / SAMPLE_RATE
    if job.mode is Mode.ASR:
        return _transcript_problem(out.segments, out.text, seconds)
    if job.mode is Mode.TRANSLATE:
        # A translation holds no more speech than its audio either; its source (the
        # segments' text, when the engine kept it) may repeat itself legitimately.
        if implausible_rate(out.text, seconds * 1.5):
            return f"{len(out.text)} characters of translation for {seconds:.1f} s of audio"
        source = " ".join(s.text for s in out.segments)
        loop = find_loop(out.text, max(2, max_repeats_in(source)) if source else 2)
    else:
        loop = find_loop(out.text)
    if loop is not None:
        return f"'{loop.unit[:80]}' repeated {loop.count} times"
    return None


def _refuse(what: str, problem: str) -> DegenerateOutput:
    return DegenerateOutput(
        f"The model's {what} was degenerate ({problem}), also on a retry with greedy "
        "decoding and a repetition penalty; no answer is returned rather than a broken one.",
    )


async def run_window(engine: Engine, job: WindowJob) -> ModelOutput:
    """``engine.run_window`` with one steadier retry of a degenerate output."""
    out = await engine.run_window(job)
    if window_problem(job, out) is None:
        return out
    # What was shown as heard stays until the window's own text replaces it.
    retry = replace(job, params=steadier(job.params), retry=True, on_heard=None)
    out = await engine.run_window(retry)
    problem = window_problem(retry, out)
    if problem is not None:
        raise _refuse("output", problem)
    return out


async def complete(engine: Engine, job: TextJob, *, max_repeats: int = 2) -> ModelOutput:
    """``engine.complete`` with one steadier retry of a looping answer. ``max_repeats``:
    how often a sentence may recur (more where the input itself repeats)."""
    out = await engine.complete(job)
    if find_loop(out.text, max_repeats) is None:
        return out
    out = await engine.complete(replace(job, params=steadier(job.params)))
    loop = find_loop(out.text, max_repeats)
    if loop is not None:
        raise _refuse("answer", f"'{loop.unit[:80]}' repeated {loop.count} times")
    return out
