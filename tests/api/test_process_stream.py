"""``POST /api/process`` as server-sent events: windows' text in audio order as they are
done, then the same result as the plain response; bad input refused with a status.

On a scripted engine (no model): the subject is the stream, not the model's words. Each
window's answer describes the audio it held (``heard 3.50 s, rms 1234``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stepaudio.engines.base import WindowJob
from stepaudio.params import Mode
from stepaudio.testing.scripted import ScriptedEngine, by_second
from stepaudio.testing.server import serve_scripted
from tests.helpers import clip


def _events(body: str) -> list[tuple[str, dict]]:
    out = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        data = json.loads(lines["data"])
        assert data["type"] == lines["event"]
        out.append((lines["event"], data))
    return out


def _post(client: httpx.Client, path: Path, headers: dict | None = None, **data: str):
    with open(path, "rb") as f:
        return client.post(
            "/api/process", files={"audio": (path.name, f)}, data=data, headers=headers or {}
        )


def _heard(text: str) -> float:
    """The seconds a scripted window's answer says it heard."""
    found = re.fullmatch(r"heard (\S+) s, rms \d+", text.strip())
    assert found, text
    return float(found[1])


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ScriptedEngine]]:
    with serve_scripted(tmp_path_factory.mktemp("process-stream"), ScriptedEngine()) as served:
        yield served


@pytest.fixture
def client(service: tuple[str, ScriptedEngine]) -> Iterator[httpx.Client]:
    """A client of the scripted service, its engine with no window recorded yet."""
    url, engine = service
    engine.windows.clear()
    with httpx.Client(base_url=url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def streamed(
    service: tuple[str, ScriptedEngine],
) -> tuple[httpx.Response, list[tuple[str, dict]], list[WindowJob]]:
    """The stream, its events, and the windows the engine was sent for it."""
    url, engine = service
    engine.windows.clear()
    with httpx.Client(base_url=url, timeout=60) as client:
        r = _post(
            client,
            clip("en/jfk.flac"),
            stream="true",
            mode="asr",
            language="en",
            segment_duration="5",
        )
    return r, _events(r.text), list(engine.windows)


def test_windows_come_in_audio_order_then_the_result(streamed) -> None:
    r, events, jobs = streamed
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    names = [name for name, _ in events]
    assert names[0] == "progress" and names[-1] == "result"
    windows = [data for name, data in events if name == "window"]
    result = events[-1][1]
    assert len(windows) == result["windows"] == len(jobs) >= 2
    assert all(j.mode is Mode.ASR and j.params.language == "en" for j in jobs)
    assert [w["index"] for w in windows] == list(range(len(windows)))
    assert all(a["end"] == b["start"] for a, b in zip(windows, windows[1:], strict=False))
    # Every window's text comes before the result, and together they are its transcript.
    assert " ".join(w["text"] for w in windows).split() == result["transcript"].split()
    assert result["answer"] == result["transcript"] and result["status"] == "success"
    # Each window's text is its own audio's: as long as the window (5 s at most).
    for w in windows:
        assert _heard(w["text"]) == pytest.approx(w["end"] - w["start"], abs=0.01)
        assert _heard(w["text"]) <= 5.0
    # Segment times are the recording's, inside their window.
    for w in windows:
        assert all(
            w["start"] - 0.01 <= s["start"] <= s["end"] <= w["end"] + 0.01 for s in w["segments"]
        )
    progress = [data for name, data in events if name == "progress"]
    assert progress[0]["done"] == 0 and progress[0]["total"] == len(windows)


def test_the_streamed_result_is_the_plain_one(client: httpx.Client, streamed) -> None:
    _, events, _ = streamed
    plain = _post(client, clip("en/jfk.flac"), mode="asr", language="en", segment_duration="5")
    assert plain.status_code == 200
    body = plain.json()
    result = events[-1][1]
    assert result.keys() - {"type"} == body.keys()
    assert result["segments"] == body["segments"] and result["answer"] == body["answer"]


def test_accept_header_asks_for_the_stream_and_the_field_wins(
    client: httpx.Client, service
) -> None:
    sse = {"Accept": "text/event-stream"}
    r = _post(client, clip("en/jfk.flac"), sse, mode="asr", language="en")
    assert r.headers["content-type"].startswith("text/event-stream")
    assert _events(r.text)[-1][0] == "result"
    r = _post(client, clip("en/jfk.flac"), sse, mode="asr", language="en", stream="false")
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["status"] == "success"
    assert _heard(r.json()["answer"]) == pytest.approx(11.0, abs=0.05)
    assert len(service[1].windows) == 2


@pytest.mark.parametrize("value", ["banana", "2", "", "tru e"])
def test_a_bad_stream_value_is_a_400(client: httpx.Client, service, value: str) -> None:
    r = _post(client, clip("en/jfk.flac"), mode="asr", stream=value)
    if value == "":
        # An empty form field is no field (as for every other one): a plain answer.
        assert r.status_code == 200 and r.json()["status"] == "success"
        return
    assert r.status_code == 400, r.text
    assert r.json()["status"] == "error" and r.json()["error"]["param"] == "stream"
    assert service[1].windows == []


def test_bad_audio_is_refused_with_a_status_not_an_event(
    client: httpx.Client, service, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"not audio at all" * 100)
    r = _post(client, junk, stream="true", mode="asr")
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["status"] == "error" and r.json()["error"]["param"] == "audio"
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    r = _post(client, empty, stream="true", mode="asr")
    assert r.status_code == 400 and r.json()["status"] == "error"
    assert service[1].windows == []


@pytest.fixture(scope="module")
def in_pieces(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict]]:
    """JFK in 5-s windows, two at once, each answered one second at a time."""
    engine = ScriptedEngine(on_window=by_second, pieces=True, slots=2)
    with (
        serve_scripted(tmp_path_factory.mktemp("pieces"), engine) as (url, _),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        r = _post(client, clip("en/jfk.flac"), stream="true", segment_duration="5")
    assert r.status_code == 200, r.text
    return _events(r.text)


def test_text_is_shown_piece_by_piece_in_audio_order(in_pieces) -> None:
    names = [name for name, _ in in_pieces]
    assert names.count("heard") >= 10  # one a second of the 11 s
    # Each window's pieces come after the window before it and before the window itself,
    # even when the windows are decoded side by side.
    expected_index = 0
    pieces: list[dict] = []
    for name, data in in_pieces:
        if name == "heard":
            assert data["index"] == expected_index
            pieces.append(data)
        elif name == "window":
            assert data["index"] == expected_index
            assert " ".join(p["text"] for p in pieces) == data["text"]
            assert [s for p in pieces for s in p["segments"]] == data["segments"]
            expected_index, pieces = expected_index + 1, []
    assert expected_index == in_pieces[-1][1]["windows"] >= 3
    # A piece's times are its own, in the recording's seconds.
    heard = [data for name, data in in_pieces if name == "heard"]
    starts = [h["start"] for h in heard]
    assert starts == sorted(starts) and starts[:2] == [0.0, 1.0]
    assert all(h["end"] - h["start"] <= 1.0 for h in heard)


def test_no_pieces_without_a_reader(tmp_path_factory: pytest.TempPathFactory) -> None:
    engine = ScriptedEngine(on_window=by_second, pieces=True)
    with (
        serve_scripted(tmp_path_factory.mktemp("plain"), engine) as (url, _),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        r = _post(client, clip("en/jfk.flac"))
    assert r.status_code == 200
    assert all(job.on_heard is None for job in engine.windows)


def test_openai_deltas_say_each_piece_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    """/v1's stream: heard pieces as deltas, each window adding only what they did not
    say; joined, the deltas are the done text."""
    engine = ScriptedEngine(on_window=by_second, pieces=True, window_s=5.0, slots=2)
    with (
        serve_scripted(tmp_path_factory.mktemp("v1-pieces"), engine) as (url, _),
        httpx.Client(base_url=url, timeout=60) as client,
        open(clip("en/jfk.flac"), "rb") as f,
    ):
        r = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("jfk.flac", f)},
            data={"model": "gpt-4o-transcribe", "stream": "true"},
        )
    assert r.status_code == 200, r.text
    events = [
        json.loads(line[6:])
        for line in r.text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]
    deltas = [e["delta"] for e in events if e["type"] == "transcript.text.delta"]
    (done,) = [e for e in events if e["type"] == "transcript.text.done"]
    assert len(deltas) >= 10  # a second at a time, not a window at a time
    assert "".join(deltas) == done["text"]
    assert done["text"].count("second 1 of") == len(engine.windows) >= 3
