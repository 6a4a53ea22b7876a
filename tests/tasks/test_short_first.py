"""A short request is served while a long background task holds every slot of the engine:
it waits at most for the task's running window, not for the task.

The subject is the scheduling (a task's worker, the request, the engine's slots), not the
model's words: the service runs on a scripted engine of one slot whose windows each take
a second, and which keeps every job in the order it ran them."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.testing.encode import write_audio
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip


@pytest.fixture
def one_slot(tmp_path: Path) -> Iterator[tuple[httpx.Client, ScriptedEngine]]:
    """A client of the service on a scripted engine of one slot, a second a window."""
    engine = ScriptedEngine(slots=1, delay_s=1.0)
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)
    with (
        serve_in_thread(create_app(settings, engine=engine), settings=settings) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield client, engine


def _view(client: httpx.Client, task_id: str) -> dict:
    r = client.get(f"/api/task/{task_id}")
    assert r.status_code == 200, r.text
    return r.json()


def test_short_request_overtakes_a_long_task(
    one_slot: tuple[httpx.Client, ScriptedEngine], minute: np.ndarray, tmp_path: Path
) -> None:
    client, engine = one_slot
    long_file = write_audio(minute, tmp_path / "long.wav")
    with open(long_file, "rb") as f:
        r = client.post(
            "/api/task",
            files={"audio": ("long.wav", f, "audio/wav")},
            # Windows of at most 10 s: six or seven, one slot.
            data={"mode": "asr", "language": "en", "segment_duration": "10"},
        )
    assert r.status_code == 202, r.text
    task_id = r.json()["task_id"]
    try:
        # Bounded only so a broken worker cannot hang the run; no timing is asserted.
        deadline = time.monotonic() + 60
        while (view := _view(client, task_id))["status"] != "processing":
            assert view["status"] == "pending" and time.monotonic() < deadline, view
            time.sleep(0.1)
        done_before = view["progress"]["done"]
        with open(clip("en/jfk.flac"), "rb") as f:
            short = client.post(
                "/api/process",
                files={"audio": ("jfk.flac", f, "audio/flac")},
                data={"mode": "asr", "language": "en"},
            )
        assert short.status_code == 200, short.text
        # The whole clip, in one window: "heard 11.00 s, rms …".
        assert re.fullmatch(r"heard 11\.00 s, rms \d+", short.json()["answer"]), short.text
        view = _view(client, task_id)
        # The request took the slot the task's running window gave up: at most that
        # window (and one whose report was on its way) finished meanwhile.
        assert view["status"] == "processing", view
        total = view["progress"]["total"]
        assert total >= 5
        assert view["progress"]["done"] <= done_before + 2 < total
        # The engine's side: the task's windows sent before the request's one are those
        # done before it came, the running one and at most one more.
        sent = [job.params.segment_duration for job in engine.windows]
        [short_at] = [i for i, seconds in enumerate(sent) if seconds is None]
        assert sent[:short_at] == [10] * short_at
        assert short_at <= done_before + 2
    finally:
        client.delete(f"/api/task/{task_id}")
