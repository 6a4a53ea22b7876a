"""Four minutes of real speech through the pipeline, cut into 60 s windows: nothing lost
at the window cuts, and every clip found where it really is.

The recording is the English reference clips of tests/data, each once (and then again
from the first) with 1.5 s of silence between them, so the whole transcript has a
reference and every clip a true start time. The same engine transcribes each clip alone
for the baseline. Windows of 60 s instead of the default 300 s give four cuts in four
minutes: the same cuts a 20-minute file gets, at a fifth of the CPU time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from stepaudio.config import Settings
from stepaudio.engines.base import WindowJob
from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.run import Pipeline
from stepaudio.testing.encode import write_audio
from stepaudio.testing.longaudio import build, load_pcm
from tests.helpers import clip, normalize_en, reference, referenced, wer

pytestmark = pytest.mark.heavy


def as_dict(segment: Any) -> dict[str, Any]:
    """A result segment (a model or a plain dict) as a dict."""
    return segment if isinstance(segment, dict) else segment.model_dump()


MIN_SECONDS = 240
WINDOW_S = 60.0
TOLERANCE_S = 1.0


_NUMBERS = {"1": "one", "2": "two", "3": "three", "i": "one", "ii": "two", "iii": "three"}


def words_of(text: str) -> list[str]:
    """Normalized words, small numbers spelled out (Whisper writes "1" or "One.")."""
    return [_NUMBERS.get(w, w) for w in normalize_en(text).split()]


@pytest.fixture(scope="module")
def short_windows(settings: Settings) -> Settings:
    return settings.updated(asr_window_s=WINDOW_S)


@pytest.fixture(scope="module")
def greedy(short_windows: Settings) -> EmbeddedEngine:
    """Greedy Whisper for both sides of the comparison: the test is about what the windows
    lose against the clips alone, not about beam search (and it halves the CPU time)."""
    return EmbeddedEngine(
        short_windows.whisper.model_copy(update={"beam_size": 1}),
        short_windows.llm,
        models_dir=short_windows.models_path,
        asr_window_s=short_windows.pipeline.asr_window_s,
    )


def test_minutes_of_asr_over_many_windows_match_the_clips(
    tmp_path: Path, short_windows: Settings, greedy: EmbeddedEngine
) -> None:
    embedded = greedy
    entries = referenced("en")
    clips = [clip(e["file"]) for e in entries]
    refs = {clip(e["file"]): reference(e) for e in entries}
    params = ProcessParams(mode=Mode.ASR, language="en")

    async def transcribe_alone(path: Path) -> str:
        pcm = load_pcm(path)
        out = await embedded.run_window(WindowJob(Mode.ASR, pcm, 0.0, params))
        return out.text

    alone = {c: anyio.run(transcribe_alone, c) for c in clips}
    clip_wer = wer([refs[c] for c in clips], [alone[c] for c in clips])

    pcm, placements = build(clips, MIN_SECONDS, gap_s=1.5)
    assert pcm.size / 16000 >= MIN_SECONDS
    source = write_audio(pcm, tmp_path / "long.flac")

    async def run_long():
        return await Pipeline(embedded, short_windows).process(source, params)

    result = anyio.run(run_long)
    assert result.windows >= 4, "four minutes in 60 s windows must take several windows"

    long_wer = wer([" ".join(refs[p.source] for p in placements)], [result.answer])
    print(f"per-clip WER {clip_wer:.3f}, whole-recording WER {long_wer:.3f}")
    assert long_wer <= clip_wer + 0.02

    segments = [as_dict(s) for s in result.segments]
    starts = [s["start"] for s in segments]
    assert starts == sorted(starts)
    assert all(s["end"] >= s["start"] for s in segments)
    # Whisper's own segment ends may run a few hundred ms into the next segment.
    overlaps = [
        (a, b) for a, b in zip(segments, segments[1:], strict=False) if b["start"] < a["end"] - 0.5
    ]
    assert not overlaps, overlaps
    assert segments[-1]["end"] <= pcm.size / 16000 + 0.5

    # Whisper's segments do not break exactly at the clips (it may open a segment in the
    # pause before a clip, or run one clip into the next), so a clip is "found" when a
    # segment in progress within ±1 s of its true start holds one of its first words,
    # and the segments over its true time range hold at least 80 % of its words.
    missed = []
    for p in placements:
        mine = words_of(alone[p.source])
        near = [
            s
            for s in segments
            if s["start"] <= p.start + TOLERANCE_S and s["end"] >= p.start - TOLERANCE_S
        ]
        near_words = set(words_of(" ".join(s["text"] for s in near)))
        over = [
            s
            for s in segments
            if s["start"] <= p.end + TOLERANCE_S and s["end"] >= p.start - TOLERANCE_S
        ]
        over_words = set(words_of(" ".join(s["text"] for s in over)))
        recall = sum(w in over_words for w in mine) / max(1, len(mine))
        # A clip of a few words ('one, two, three') may lose one in context; WER counts it.
        if not near_words.intersection(mine[:3]) or (len(mine) >= 6 and recall < 0.8):
            where = [(s["start"], s["text"][:40]) for s in near]
            missed.append((p.source.name, round(p.start, 2), mine[:3], round(recall, 2), where))
    assert not missed, f"clips not found within ±{TOLERANCE_S} s of their start: {missed}"
    assert np.isfinite(long_wer)
