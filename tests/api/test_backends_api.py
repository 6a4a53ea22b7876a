"""The service in front of Step-Audio stand-ins: /api/process, /api/status, /ready."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from stepaudio.api import create_app
from stepaudio.audio import DecodedAudio, encode_wav
from stepaudio.config import BackendConfig, Settings
from stepaudio.testing import StandIn
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip

CLIPS = ["en/jfk.flac", "en/librispeech-1995-1837-0001.wav", "zh/wenet_nst_ID001.wav"]


@contextmanager
def service(settings: Settings, *stand_ins: StandIn, **over) -> Iterator[httpx.Client]:
    backends = [BackendConfig(url=si.url, max_concurrency=si.max_num_seqs) for si in stand_ins]
    s = settings.updated(backends=backends, **over)
    with serve_in_thread(create_app(s)) as url, httpx.Client(base_url=url, timeout=120) as c:
        wait_until(lambda: c.get("/ready").status_code == 200)
        yield c


def process(c: httpx.Client, path: Path, mode: str = "asr") -> httpx.Response:
    with open(path, "rb") as f:
        return c.post("/api/process", files={"audio": (path.name, f)}, data={"mode": mode})


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


LONG_CLIPS = {
    # clip: words of it the transcript must hold
    "en/jfk.flac": "fellow americans",
    "en/librispeech-1995-1837-0001.wav": "sorrow",
    "en/sense_and_sensibility_0870.wav": "dashwood",
    "en/sonnet_1.mp3": "creatures",
}


@pytest.fixture(scope="module")
def long_wav(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 85 s of four different speakers' texts, a pause after each. Different texts:
    a summary of one sentence said five times would rightly be refused as a loop."""
    pieces = []
    for name in LONG_CLIPS:
        with DecodedAudio.from_file(clip(name), settings.data_dir / "tmp") as d:
            pieces += [np.array(d.samples), np.zeros(32000, dtype=np.int16)]
    path = tmp_path_factory.mktemp("long") / "four-readers.wav"
    path.write_bytes(encode_wav(np.concatenate(pieces)))
    return path


@pytest.mark.heavy
def test_same_transcripts_as_embedded(settings: Settings, client: httpx.Client) -> None:
    with StandIn(data_dir=settings.data_dir) as si, service(settings, si) as c:
        for name in CLIPS:
            remote = process(c, clip(name))
            assert remote.status_code == 200, remote.text
            local = process(client, clip(name))
            body = remote.json()
            assert body["answer"] == local.json()["answer"]
            assert body["thinking"] and body["thinking"] not in body["answer"]
            assert "</think>" not in body["answer"] and "<|EOT|>" not in body["answer"]
        s2t = process(c, clip("en/jfk.flac"), "s2t").json()
        assert "ask not what your country" in s2t["transcript"]
        assert s2t["summary"] and s2t["thinking"]
        assert not si.stats.violations


@pytest.mark.heavy
def test_long_file_is_split_and_every_request_is_valid(settings: Settings, long_wav: Path) -> None:
    with StandIn(data_dir=settings.data_dir, max_model_len=3000) as si, service(settings, si) as c:
        resp = process(c, long_wav)
        assert resp.status_code == 200, resp.text
        answer = resp.json()["answer"].lower()
        assert all(words in answer for words in LONG_CLIPS.values()), answer
        assert process(c, long_wav, "summarize").status_code == 200
    assert len([r for r in si.stats.log if r["parts"]]) >= 4  # two windows per file
    assert not si.stats.violations
    for r in si.stats.log:
        assert r["prompt_tokens"] + r["max_tokens"] <= 3000
        assert all(p <= 25.0 for p in r["parts"])


def test_two_backends_twenty_requests_and_failover(settings: Settings) -> None:
    path = clip("en/jfk.flac")
    with (
        StandIn(data_dir=settings.data_dir, latency=(0.3, 0.0)) as a,
        StandIn(data_dir=settings.data_dir, latency=(0.3, 0.0)) as b,
        service(settings, a, b) as c,
        concurrent.futures.ThreadPoolExecutor(20) as pool,
    ):
        codes = list(pool.map(lambda _: process(c, path).status_code, range(20)))
        assert codes == [200] * 20
        assert a.stats.max_concurrency <= 4 and b.stats.max_concurrency <= 4

        futures = [pool.submit(process, c, path) for _ in range(20)]
        time.sleep(0.5)
        b.stop()
        assert [f.result().status_code for f in futures] == [200] * 20
        assert a.stats.max_concurrency <= 4

        def healthy() -> list[bool]:
            return [x["healthy"] for x in c.get("/api/status").json()["engine"]["backends"]]

        wait_until(lambda: healthy() == [True, False])
        status = c.get("/api/status").json()["engine"]["backends"]
        assert {"url", "model", "max_model_len", "capacity", "in_flight", "latency_ms"} <= set(
            status[0]
        )
        assert c.get("/ready").status_code == 200
        b.start()
        wait_until(lambda: healthy() == [True, True])
        assert not a.stats.violations and not b.stats.violations


@pytest.mark.heavy
def test_failures_never_give_a_partial_answer(settings: Settings) -> None:
    path = clip("en/jfk.flac")
    with (
        StandIn(data_dir=settings.data_dir) as si,
        service(settings, si, request_timeout_s=2.0, timeout_per_audio_s=0.0) as c,
    ):
        assert process(c, path).status_code == 200  # warms the stand-in
        si.fail("500", times=1)
        assert process(c, path).status_code == 200  # retried
        si.fail("cut")
        cut = process(c, path)
        assert cut.status_code == 502 and cut.json()["status"] == "error"
        si.fail("hang")
        hung = process(c, path)
        assert hung.status_code == 504 and hung.json()["status"] == "error"
        si.fail(None)
        si.stop()
        down = process(c, path)
        assert down.status_code == 503 and down.json()["error"]["type"] == "backend_unavailable"
        assert c.get("/ready").status_code == 503


def test_truncated_output_is_an_error(settings: Settings) -> None:
    with StandIn(data_dir=settings.data_dir) as si, service(settings, si) as c:
        with open(clip("en/jfk.flac"), "rb") as f:
            resp = c.post(
                "/api/process",
                files={"audio": ("jfk.flac", f)},
                data={"mode": "summarize", "max_tokens": "20"},
            )
        assert resp.status_code == 502 and resp.json()["error"]["code"] == "output_truncated"


def test_configured_as_the_seed_was(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with StandIn(data_dir=settings.data_dir) as si:
        monkeypatch.setenv("VLLM_API_URL", f"{si.url}/v1/chat/completions")
        monkeypatch.setenv("MODEL_NAME", "Step-Audio-R1.1")
        seed = Settings(data_dir=settings.data_dir, _env_file=None)
        assert seed.backends == [] and seed.all_backends()
        with serve_in_thread(create_app(seed)) as url, httpx.Client(base_url=url) as c:
            resp = process(c, clip("en/jfk.flac"))
            assert resp.status_code == 200, resp.text
            assert "ask not what your country" in resp.json()["answer"]
            status = c.get("/api/status").json()
            assert status["model"] == "Step-Audio-R1.1"
            assert status["engine"]["backends"][0]["healthy"]
