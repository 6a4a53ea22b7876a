"""A short request is served while a long background task holds every slot of the real
embedded engine: it waits for the task's running window, not for the task."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np

from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.testing.encode import write_audio
from tests.helpers import clip


def _view(client: httpx.Client, task_id: str) -> dict:
    r = client.get(f"/api/task/{task_id}")
    assert r.status_code == 200, r.text
    return r.json()


def test_short_request_overtakes_a_long_task(
    client: httpx.Client, embedded: EmbeddedEngine, minute: np.ndarray, tmp_path: Path
) -> None:
    long_file = write_audio(minute, tmp_path / "long.wav")
    with open(long_file, "rb") as f:
        r = client.post(
            "/api/task",
            files={"audio": ("long.wav", f, "audio/wav")},
            # Windows of at most 10 s: six or seven, one slot (one Whisper worker).
            data={"mode": "asr", "language": "en", "segment_duration": "10"},
        )
    assert r.status_code == 202, r.text
    task_id = r.json()["task_id"]
    try:
        # Bounded only so a broken worker cannot hang the run; no timing is asserted.
        deadline = time.monotonic() + 300
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
        assert "country" in short.json()["answer"].lower()
        view = _view(client, task_id)
        # The request took the slot the task's running window gave up: at most that
        # window (and one whose report was on its way) finished meanwhile.
        assert view["status"] == "processing", view
        total = view["progress"]["total"]
        assert total >= 5
        assert view["progress"]["done"] <= done_before + 2 < total
    finally:
        client.delete(f"/api/task/{task_id}")
        # A cancelled window's Whisper call runs on in its thread, holding the engine's
        # limiter until it ends: wait for that, so no model call outlives the test.
        deadline = time.monotonic() + 300
        while embedded._whisper_slots.borrowed_tokens and time.monotonic() < deadline:
            time.sleep(0.2)
