"""BackendPool over two stand-ins: capacity, least-loaded, failover, health."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from stepaudio.audio import DecodedAudio
from stepaudio.config import BackendConfig, RetryPolicy, Settings
from stepaudio.engines.base import WindowJob
from stepaudio.engines.pool import BackendPool
from stepaudio.engines.stepaudio.engine import StepAudioEngine
from stepaudio.errors import BackendError, BackendTimeout, BackendUnavailable
from stepaudio.params import Mode, ProcessParams
from stepaudio.testing import StandIn
from tests.helpers import clip

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def pcm(settings: Settings) -> np.ndarray:
    with DecodedAudio.from_file(clip("en/jfk.flac"), settings.data_dir / "tmp") as decoded:
        return np.array(decoded.samples[: 16000 * 4])


def make_pool(settings: Settings, *stand_ins: StandIn, **over) -> BackendPool:
    s = settings.updated(**over)
    engines = [
        StepAudioEngine(BackendConfig(url=si.url, max_concurrency=si.max_num_seqs), s)
        for si in stand_ins
    ]
    return BackendPool(engines, s, health_interval_s=0.2, retry=RetryPolicy(base_s=0.05))


def asr(pcm: np.ndarray) -> WindowJob:
    return WindowJob(Mode.ASR, pcm, 0.0, ProcessParams(mode=Mode.ASR))


async def wait_for(predicate, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_twenty_requests_never_over_capacity_and_failover(
    settings: Settings, pcm: np.ndarray
) -> None:
    with (
        StandIn(data_dir=settings.data_dir, latency=(0.15, 0.0)) as a,
        StandIn(data_dir=settings.data_dir, latency=(0.15, 0.0)) as b,
    ):
        pool = make_pool(settings, a, b)
        try:
            outs = await asyncio.gather(*(pool.run_window(asr(pcm)) for _ in range(20)))
            assert all("fellow Americans" in o.text for o in outs)
            assert a.stats.max_concurrency <= 4 and b.stats.max_concurrency <= 4
            assert a.stats.completed >= 4 and b.stats.completed >= 4  # both used
            assert pool.capacity() == 8

            # Stop one midway: every request still succeeds on the other.
            tasks = [asyncio.create_task(pool.run_window(asr(pcm))) for _ in range(20)]
            await asyncio.sleep(0.2)
            b.stop()
            outs = await asyncio.gather(*tasks)
            assert all("fellow Americans" in o.text for o in outs)
            assert a.stats.max_concurrency <= 4
            report = await pool.health()
            assert report["ready"] and [x["healthy"] for x in report["backends"]] == [True, False]
            assert report["backends"][1]["last_error"]
            assert pool.capacity() == 4

            b.start()
            await wait_for(lambda: all(s["healthy"] for s in pool.backends()))
            assert pool.capacity() == 8
            assert not a.stats.violations and not b.stats.violations
        finally:
            await pool.aclose()


async def test_retries_500_elsewhere_and_reports_persistent_failures(
    settings: Settings, pcm: np.ndarray
) -> None:
    with StandIn(data_dir=settings.data_dir) as a, StandIn(data_dir=settings.data_dir) as b:
        pool = make_pool(settings, a, b)
        try:
            a.fail("500")
            b.fail("500", times=1)
            outs = await asyncio.gather(*(pool.run_window(asr(pcm)) for _ in range(3)))
            assert all(o.text for o in outs)
            b.fail("cut")
            with pytest.raises(BackendError):
                await pool.run_window(asr(pcm))
        finally:
            await pool.aclose()


async def test_down_and_hung_backends(settings: Settings, pcm: np.ndarray) -> None:
    with StandIn(data_dir=settings.data_dir) as a:
        pool = make_pool(settings, a, request_timeout_s=1.0, timeout_per_audio_s=0.0)
        try:
            await pool.run_window(asr(pcm))  # warms the stand-in's transcript cache
            a.fail("hang")
            with pytest.raises(BackendTimeout):
                await pool.run_window(asr(pcm))
            a.fail(None)
            a.stop()
            with pytest.raises(BackendUnavailable):
                await pool.run_window(asr(pcm))
            assert not (await pool.health())["ready"]
            a.start()
            await wait_for(lambda: pool.backends()[0]["healthy"])
            assert (await pool.run_window(asr(pcm))).text
        finally:
            await pool.aclose()


async def test_waits_for_capacity(settings: Settings, pcm: np.ndarray) -> None:
    with StandIn(data_dir=settings.data_dir, max_num_seqs=2, latency=(0.1, 0.0)) as a:
        pool = make_pool(settings, a)
        try:
            await asyncio.gather(*(pool.run_window(asr(pcm)) for _ in range(7)))
            assert a.stats.max_concurrency <= 2 and a.stats.completed == 7
            assert pool.backends()[0]["in_flight"] == 0
        finally:
            await pool.aclose()
