"""The embedded engine shows text as it is heard: a long window's speech chunks stream
one run at a time (the first alone), and together they are the window's text."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np

from stepaudio.testing.encode import write_audio


def test_a_minute_streams_chunk_by_chunk(server: str, minute: np.ndarray, tmp_path: Path):
    path = tmp_path / "minute.wav"
    write_audio(minute, path, "wav")
    events = []
    with (
        httpx.Client(base_url=server, timeout=300) as client,
        open(path, "rb") as f,
        client.stream(
            "POST", "/api/process", files={"audio": f}, data={"mode": "asr", "stream": "true"}
        ) as r,
    ):
        assert r.status_code == 200
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    names = [e["type"] for e in events]
    heard = [e for e in events if e["type"] == "heard"]
    (window,) = [e for e in events if e["type"] == "window"]
    assert len(heard) >= 2 and names.index("window") > names.index("heard")
    # The first piece is one speech chunk (≤ 30 s), not the whole minute.
    assert heard[0]["end"] <= 31 and heard[-1]["end"] > 40
    assert " ".join(h["text"] for h in heard).split() == window["text"].split()
    assert "ask not what your country" in window["text"].lower()
    assert events[-1]["type"] == "result" and events[-1]["transcript"] == window["text"]


def test_openai_stream_deltas_are_the_done_text(server: str, minute: np.ndarray, tmp_path: Path):
    import openai

    path = tmp_path / "minute.wav"
    write_audio(minute, path, "wav")
    sdk = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    with open(path, "rb") as f:
        events = list(
            sdk.audio.transcriptions.create(model="gpt-4o-transcribe", file=f, stream=True)
        )
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    (done,) = [e for e in events if e.type == "transcript.text.done"]
    assert len(deltas) >= 2 and "".join(deltas) == done.text
    assert "ask not what your country" in done.text.lower()
