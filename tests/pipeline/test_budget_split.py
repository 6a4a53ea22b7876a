"""A recording too long for the backends' context is split so that no request breaks the
budget, and the merged transcript is still complete.

Two stand-in vLLM servers with a small ``max_model_len`` validate every request (parts of
at most 25 s, prompt + max_tokens within the context) and answer with the embedded
Whisper, so the merged transcript can be scored against the clips' references.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from stepaudio.config import BackendConfig, Settings
from stepaudio.engines.base import WindowJob
from stepaudio.engines.pool import BackendPool
from stepaudio.engines.stepaudio.engine import StepAudioEngine
from stepaudio.engines.whisper import WhisperTranscriber
from stepaudio.errors import ContextLengthExceeded
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.result import ProcessResult
from stepaudio.pipeline.run import Pipeline
from stepaudio.testing import StandIn
from stepaudio.testing.encode import write_audio
from stepaudio.testing.longaudio import Placement, build
from stepaudio.testing.standin_cache import CachedTranscriber
from tests.helpers import clip, normalize_en, reference, referenced, wer

pytestmark = pytest.mark.heavy


def as_dict(segment: Any) -> dict[str, Any]:
    """A result segment (a model or a plain dict) as a dict."""
    return segment if isinstance(segment, dict) else segment.model_dump()


MAX_MODEL_LEN = 3072
"""Room for ~57 s of audio next to the default max_tokens of 2048."""


@pytest.fixture(scope="module")
def standins(settings: Settings) -> Iterator[list[StandIn]]:
    # Greedy ears for the stand-ins: these tests are about budgets and cuts, and beam
    # search over 200 s of 25 s parts would triple their time.
    ears = CachedTranscriber(WhisperTranscriber("base", settings.models_path, beam_size=1))
    servers = [
        StandIn(max_model_len=MAX_MODEL_LEN, max_num_seqs=2, transcriber=ears) for _ in range(2)
    ]
    for s in servers:
        s.start()
    yield servers
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Placement], str]:
    entries = referenced("en")
    refs = {clip(e["file"]): reference(e) for e in entries}
    # Past two windows of ~57 s: three windows at least, cut mid-sonnet.
    pcm, placements = build(list(refs), 130, gap_s=1.5)
    path = write_audio(pcm, tmp_path_factory.mktemp("budget") / "long.flac")
    return path, placements, " ".join(refs[p.source] for p in placements)


def run(standins: list[StandIn], settings: Settings, source: Path, params: ProcessParams):
    async def go() -> ProcessResult:
        pool = BackendPool(
            [
                StepAudioEngine(BackendConfig(url=s.url, max_concurrency=s.max_num_seqs), settings)
                for s in standins
            ],
            settings,
        )
        try:
            return await Pipeline(pool, settings).process(source, params)
        finally:
            await pool.aclose()

    return anyio.run(go)


def test_windows_fit_the_budget_and_the_transcript_is_complete(
    standins: list[StandIn], settings: Settings, recording: tuple[Path, list[Placement], str]
) -> None:
    source, placements, ref = recording
    before = [len(s.stats.log) for s in standins]
    result = run(standins, settings, source, ProcessParams(mode=Mode.ASR, language="en"))

    assert result.windows >= 3
    log = [r for s, n in zip(standins, before, strict=True) for r in s.stats.log[n:]]
    assert len(log) == result.windows
    for s in standins:
        assert s.stats.violations == []
    for r in log:
        assert r["prompt_tokens"] + r["max_tokens"] <= MAX_MODEL_LEN
        assert r["finish_reason"] == "stop"
        assert max(r["parts"]) <= 25.0
    # Both backends took work.
    assert all(len(s.stats.log) > b for s, b in zip(standins, before, strict=True))

    score = wer([ref], [result.answer])
    print(f"{result.windows} windows, WER {score:.3f}")
    assert score <= 0.2
    assert len(normalize_en(result.answer).split()) >= 0.9 * len(normalize_en(ref).split())
    starts = [as_dict(s)["start"] for s in result.segments]
    assert starts == sorted(starts) and len(starts) == result.windows


def test_summary_modes_use_the_largest_windows_that_fit(
    standins: list[StandIn], settings: Settings, recording: tuple[Path, list[Placement], str]
) -> None:
    source, _, _ = recording
    before = [len(s.stats.log) for s in standins]
    result = run(standins, settings, source, ProcessParams(mode=Mode.SUMMARIZE))
    log = [r for s, n in zip(standins, before, strict=True) for r in s.stats.log[n:]]
    audio_calls = [r for r in log if r["parts"]]
    assert len(audio_calls) == result.windows >= 3
    assert any(not r["parts"] for r in log), "window summaries are reduced by a text call"
    for r in log:
        assert r["prompt_tokens"] + r["max_tokens"] <= MAX_MODEL_LEN
    for s in standins:
        assert s.stats.violations == []
    assert result.answer.strip()


def test_one_window_for_the_whole_file_is_clamped_to_what_fits(
    standins: list[StandIn], settings: Settings, recording: tuple[Path, list[Placement], str]
) -> None:
    """The seed's way (``segment_duration`` past the budget: one request for the whole
    file) would overflow the context. The planner clamps it to the largest window that
    fits; the engine itself still refuses an oversize window before sending it."""
    source, _, _ = recording
    params = ProcessParams(mode=Mode.ASR, language="en", segment_duration=600)
    requests = sum(s.stats.requests for s in standins)

    async def go() -> tuple[list[float], float]:
        pool = BackendPool(
            [
                StepAudioEngine(BackendConfig(url=s.url, max_concurrency=s.max_num_seqs), settings)
                for s in standins
            ],
            settings,
        )
        try:
            pipeline = Pipeline(pool, settings)
            _, decoded = await pipeline.decode(source)
            with decoded:
                spans = pipeline.plan(decoded, params)
                with pytest.raises(ContextLengthExceeded):
                    await pool.run_window(WindowJob(Mode.ASR, decoded.samples, 0.0, params))
            return [s.duration for s in spans], pool.max_window_seconds(Mode.ASR, params)
        finally:
            await pool.aclose()

    durations, longest = anyio.run(go)
    assert len(durations) >= 3 and max(durations) <= longest < 600
    assert sum(s.stats.requests for s in standins) == requests
