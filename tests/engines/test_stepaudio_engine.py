"""StepAudioEngine against the stand-in: request shape, reasoning split, limits, errors."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from stepaudio.audio import DecodedAudio
from stepaudio.config import BackendConfig, Settings
from stepaudio.engines.base import TextJob, WindowJob
from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.engines.http import base_url
from stepaudio.engines.stepaudio.engine import StepAudioEngine
from stepaudio.engines.stepaudio.wire import split_reasoning
from stepaudio.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ContextLengthExceeded,
)
from stepaudio.params import Mode, ProcessParams
from stepaudio.testing import StandIn
from tests.helpers import clip

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def load_pcm(name: str, settings: Settings) -> np.ndarray:
    with DecodedAudio.from_file(clip(name), settings.data_dir / "tmp") as decoded:
        return np.array(decoded.samples)


@pytest.fixture(scope="module")
def jfk(settings: Settings) -> np.ndarray:
    return load_pcm("en/jfk.flac", settings)


@pytest.fixture(scope="module")
def standin(settings: Settings):
    with StandIn(data_dir=settings.data_dir, max_model_len=8192) as si:
        yield si


def engine_for(si: StandIn, settings: Settings, **over) -> StepAudioEngine:
    s = settings.updated(**over)
    return StepAudioEngine(BackendConfig(url=si.url), s)


def job(mode: Mode, pcm: np.ndarray, **params) -> WindowJob:
    return WindowJob(mode, pcm, 0.0, ProcessParams(mode=mode, **params))


def test_base_url_accepts_the_seeds_full_url() -> None:
    assert base_url("http://h:9999/v1/chat/completions") == "http://h:9999"
    assert base_url("http://h:9999/v1/") == "http://h:9999"
    assert base_url("http://h:9999") == "http://h:9999"


def test_split_reasoning() -> None:
    assert split_reasoning("hmm\n</think>\nHello.<|EOT|>") == ("hmm", "Hello.", True)
    assert split_reasoning("a</think>b</think>c") == ("a", "b</think>c", True)
    assert split_reasoning("still thinking") == ("still thinking", "", False)


async def test_transcript_matches_embedded_whisper(
    standin: StandIn, settings: Settings, embedded: EmbeddedEngine, jfk: np.ndarray
) -> None:
    engine = engine_for(standin, settings)
    try:
        out = await engine.run_window(job(Mode.ASR, jfk))
    finally:
        await engine.aclose()
    local = await embedded.run_window(job(Mode.ASR, jfk))
    assert out.text == local.text
    assert out.thinking and "</think>" not in out.text and "<|EOT|>" not in out.text
    assert out.thinking not in out.text and not out.truncated
    assert out.segments[0].end == pytest.approx(11.0, abs=0.1)
    assert out.usage.prompt_tokens > 0 and out.usage.completion_tokens > 0


async def test_budget_from_models_endpoint(standin: StandIn, settings: Settings) -> None:
    engine = engine_for(standin, settings)
    assert engine.max_model_len == settings.backend.max_model_len  # fallback before a probe
    state = await engine.probe()
    assert state.healthy and engine.max_model_len == 8192
    params = ProcessParams(mode=Mode.SUMMARIZE, max_tokens=2048)
    window = engine.max_window_seconds(Mode.SUMMARIZE, params)
    # Largest window whose prompt + max_tokens fits 8192 tokens at 12.6 tokens/s.
    assert 400 < window < (8192 - 2048) / 12.52
    asr = engine.max_window_seconds(Mode.ASR, ProcessParams(mode=Mode.ASR))
    assert asr <= (2048 - 1500) / 250 * 60
    await engine.aclose()


@pytest.mark.heavy
async def test_long_window_is_cut_into_parts(
    standin: StandIn, settings: Settings, jfk: np.ndarray
) -> None:
    # JFK with a 2 s pause after each sentence (65 s): parts are cut in the pauses.
    pcm = np.tile(np.concatenate([jfk, np.zeros(32000, dtype=jfk.dtype)]), 5)
    engine = engine_for(standin, settings)
    before = len(standin.stats.log)
    try:
        out = await engine.run_window(job(Mode.SUMMARIZE, pcm))
    finally:
        await engine.aclose()
    parts = standin.stats.log[before]["parts"]
    assert len(parts) == 3 and max(parts) <= 25.0 and sum(parts) == pytest.approx(65, abs=0.1)
    assert out.text and not standin.stats.violations


async def test_request_that_cannot_fit_is_never_sent(
    standin: StandIn, settings: Settings, jfk: np.ndarray
) -> None:
    engine = engine_for(standin, settings)
    await engine.probe()
    before = standin.stats.requests
    with pytest.raises(ContextLengthExceeded):
        await engine.run_window(job(Mode.SUMMARIZE, np.tile(jfk, 60), max_tokens=2048))
    assert standin.stats.requests == before
    await engine.aclose()


async def test_truncation_is_reported_not_answered(
    standin: StandIn, settings: Settings, jfk: np.ndarray
) -> None:
    engine = engine_for(standin, settings)
    try:
        out = await engine.run_window(job(Mode.SUMMARIZE, jfk, max_tokens=20))
        assert out.truncated and out.text == "" and out.thinking
        # Verbatim modes retry once without reasoning, and that fits.
        before = len(standin.stats.log)
        asr = await engine.run_window(job(Mode.ASR, jfk, max_tokens=40))
        assert not asr.truncated and "ask not what your country" in asr.text
        assert [r["thinking"] for r in standin.stats.log[before:]] == [True, False]
        tiny = await engine.run_window(job(Mode.ASR, jfk, max_tokens=5))
        assert tiny.truncated and tiny.text == ""
    finally:
        await engine.aclose()


async def test_no_thinking_prefill(standin: StandIn, settings: Settings, jfk: np.ndarray) -> None:
    engine = engine_for(standin, settings)
    try:
        out = await engine.run_window(job(Mode.ASR, jfk, thinking=False))
    finally:
        await engine.aclose()
    assert out.thinking == "" and "ask not" in out.text
    assert standin.stats.log[-1]["thinking"] is False


async def test_text_completion(standin: StandIn, settings: Settings) -> None:
    engine = engine_for(standin, settings)
    try:
        prompt = "Here is a transcript:\n\nFirst one. Second one. Third one.\n\nSummarize."
        out = await engine.complete(TextJob("system", prompt, ProcessParams()))
    finally:
        await engine.aclose()
    assert out.text == "First one. Second one." and out.thinking


async def test_backend_errors_are_translated(settings: Settings, jfk: np.ndarray) -> None:
    short = jfk[: 16000 * 2]
    with StandIn(data_dir=settings.data_dir) as si:
        engine = engine_for(si, settings)
        hasty = engine_for(si, settings, request_timeout_s=1.0, timeout_per_audio_s=0.0)
        try:
            si.fail("500")
            with pytest.raises(BackendError) as err:
                await engine.run_window(job(Mode.ASR, short))
            assert err.value.code == "http_500"
            si.fail("cut")
            with pytest.raises(BackendError) as err:
                await engine.run_window(job(Mode.ASR, short))
            assert err.value.code == "stream_cut"
            si.fail("hang")
            with pytest.raises(BackendTimeout):
                await hasty.run_window(job(Mode.ASR, short))
            si.fail(None)
            si.stop()
            with pytest.raises(BackendUnavailable):
                await engine.run_window(job(Mode.ASR, short))
            assert not (await engine.probe()).healthy
        finally:
            await engine.aclose()
            await hasty.aclose()


async def test_cancel_closes_the_backend_request(settings: Settings, jfk: np.ndarray) -> None:
    with StandIn(data_dir=settings.data_dir) as si:
        engine = engine_for(si, settings)
        si.fail("hang")
        task = asyncio.create_task(engine.run_window(job(Mode.ASR, jfk[:16000])))
        for _ in range(100):
            if si.stats.in_flight:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if si.stats.cancelled:
                break
            await asyncio.sleep(0.02)
        assert si.stats.cancelled == 1 and si.stats.in_flight == 0
        await engine.aclose()
