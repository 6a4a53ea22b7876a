"""Known speakers from a key's voice library, on a real server: the real voice prints
(CAM++) and diarization, the transcript scripted (its words timed evenly over each short
window, so every word gets a speaker; the subject is who speaks, not what is said).

A conversation of two enrolled readers and two strangers: the readers named right for at
least 90 % of their speech, the strangers never given an enrolled name; the same through
the OpenAI SDK's known_speaker_names/references; another key cannot list, rename,
delete or use the voices; bad samples are clear 4xx."""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.diarize.assign import Turn
from stepaudio.testing.encode import realtime_pcm, write_audio
from stepaudio.testing.scripted import ScriptedEngine, worded
from stepaudio.testing.server import serve_scripted
from stepaudio.testing.speakers import Line, conversation, utterance
from tests.helpers import DATA
from tests.realtime_client import manual, transcribed

pytestmark = pytest.mark.model  # the real speaker model, on every test

KEY, OTHER = "voices-key-alice", "voices-key-mallory"
ENROL = {
    "JFK": Line("jfk", "en/jfk.flac", 0.0, 5.5),
    "Reader": Line("sonnets", "en/sonnet_1.mp3", 12.0, 30.0),
}
# Other words than the samples, and two voices nobody enrolled.
MEETING = [
    Line("JFK", "en/jfk.flac", 5.5, None),
    Line("Reader", "en/sonnet_2.mp3", 20.0, 32.0),
    Line("stranger", "en/sense_and_sensibility_0920.wav"),
    Line("Reader", "en/sonnet_3.mp3", 20.0, 30.0),
    Line("stranger 2", "en/librispeech-1995-1837-0001.wav"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    engine = ScriptedEngine(on_window=worded, window_s=3.0)
    with serve_scripted(tmp_path_factory.mktemp("voices"), engine, api_keys=[KEY, OTHER]) as (
        url,
        _,
    ):
        yield url


def client(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=300, headers={"X-API-Key": key})


def wav(pcm: np.ndarray, folder: Path, name: str) -> Path:
    return write_audio(pcm, folder / name)


def finished(c: httpx.Client, task_id: str) -> dict:
    """The task once it has completed (two minutes at most)."""
    for _ in range(600):
        task = c.get(f"/api/task/{task_id}").json()
        if task["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.2)
    assert task["status"] == "completed", task
    return task


def enrol(c: httpx.Client, name: str, path: Path) -> httpx.Response:
    return c.post(
        "/api/voices", data={"name": name}, files={"audio": (path.name, path.read_bytes())}
    )


@pytest.fixture(scope="module")
def meeting(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Turn]]:
    pcm, reference = conversation(MEETING, DATA)
    return wav(pcm, tmp_path_factory.mktemp("meeting"), "meeting.wav"), reference


@pytest.fixture(scope="module")
def library(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """KEY's two voices, enrolled from samples; their ids."""
    folder = tmp_path_factory.mktemp("samples")
    ids = {}
    with client(server, KEY) as c:
        for name, line in ENROL.items():
            r = enrol(c, name, wav(utterance(line, DATA), folder, f"{name}.wav"))
            assert r.status_code == 201, r.text
            assert r.json()["name"] == name and r.json()["seconds"] >= 2
            ids[name] = r.json()["voice_id"]
    return ids


def named_share(segments: list[dict], reference: list[Turn]) -> dict[str, dict[str, float]]:
    """For each reference speaker: the share of their speech given each label."""
    out: dict[str, dict[str, float]] = {}
    for turn in reference:
        shares = out.setdefault(turn.speaker, {})
        for s in segments:
            overlap = min(turn.end, s["end"]) - max(turn.start, s["start"])
            if overlap > 0:
                shares[s["speaker"]] = shares.get(s["speaker"], 0.0) + overlap
    for speaker, shares in out.items():
        total = sum(t.end - t.start for t in reference if t.speaker == speaker)
        out[speaker] = {k: v / total for k, v in shares.items()}
    return out


def check_meeting(segments: list[dict], reference: list[Turn]) -> None:
    shares = named_share(segments, reference)
    for name in ENROL:
        assert shares[name].get(name, 0.0) >= 0.9, (name, shares[name])
    for stranger in ("stranger", "stranger 2"):
        given = {k: v for k, v in shares[stranger].items() if k in ENROL}
        assert not given, (stranger, shares[stranger])


def test_enrolled_voices_are_named_and_strangers_are_not(server, library, meeting):
    path, reference = meeting
    with client(server, KEY) as c:
        r = c.post(
            "/api/process",
            data={"mode": "asr", "voices": "*"},
            files={"audio": (path.name, path.read_bytes())},
        )
    assert r.status_code == 200, r.text
    segments = r.json()["segments"]
    check_meeting(segments, reference)
    named = [s for s in segments if s["speaker"] in ENROL]
    assert named and all(0.63 <= s["speaker_confidence"] <= 1.0 for s in named)
    assert all(s["speaker_confidence"] is None for s in segments if s["speaker"] not in ENROL)
    # One name per voice, one voice per name: the two readers never share a label.
    labels = {t.speaker: set() for t in reference}
    for s in segments:
        mid = (s["start"] + s["end"]) / 2
        who = min(reference, key=lambda t: max(t.start - mid, mid - t.end, 0.0)).speaker
        labels[who].add(s["speaker"])
    assert not labels["JFK"] & labels["Reader"]


def data_url(pcm: np.ndarray, folder: Path, name: str) -> str:
    path = wav(pcm, folder, name)
    return "data:audio/wav;base64," + base64.b64encode(path.read_bytes()).decode()


def test_the_same_through_the_openai_sdk_with_reference_clips(server, meeting, tmp_path):
    path, reference = meeting
    refs = [data_url(utterance(line, DATA), tmp_path, f"{n}.wav") for n, line in ENROL.items()]
    sdk = openai.OpenAI(base_url=f"{server}/v1", api_key=OTHER)  # no library needed
    with open(path, "rb") as f:
        got = sdk.audio.transcriptions.create(
            file=f,
            model="gpt-4o-transcribe-diarize",
            response_format="diarized_json",
            known_speaker_names=list(ENROL),
            known_speaker_references=refs,
        )
    segments = [{"start": s.start, "end": s.end, "speaker": s.speaker} for s in got.segments]
    check_meeting(segments, reference)


def test_another_key_cannot_list_rename_delete_or_use_the_voices(server, library, meeting):
    path, _ = meeting
    with client(server, OTHER) as c:
        assert c.get("/api/voices").json() == {"voices": []}
        jfk = library["JFK"]
        assert c.patch(f"/api/voices/{jfk}", json={"name": "Mallory"}).status_code == 404
        assert c.delete(f"/api/voices/{jfk}").status_code == 404
        r = c.post(
            "/api/process",
            data={"mode": "asr", "voices": "JFK"},
            files={"audio": (path.name, path.read_bytes())},
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_voice"
        # "*" is only one's own: nothing of KEY's is matched.
        r = c.post(
            "/api/process",
            data={"mode": "asr", "voices": "*"},
            files={"audio": (path.name, path.read_bytes())},
        )
        assert r.status_code == 200
        assert not {s["speaker"] for s in r.json()["segments"]} & set(ENROL)
    with client(server, KEY) as c:
        names = sorted(v["name"] for v in c.get("/api/voices").json()["voices"])
        assert names == sorted(ENROL)


def tone_chord(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    notes = [261.6, 329.6, 392.0, 523.3]
    wave = sum(np.sin(2 * math.pi * f * t) * (1 + 0.3 * np.sin(2 * math.pi * 2 * t)) for f in notes)
    return (wave / len(notes) * 12000).astype(np.int16)


@pytest.mark.parametrize(
    "name, make, code",
    [
        ("silence", lambda: np.zeros(4 * SAMPLE_RATE, np.int16), "too_little_speech"),
        ("music", lambda: tone_chord(6.0), "too_little_speech"),
        ("0.3 s", lambda: utterance(ENROL["JFK"], DATA)[: int(0.3 * SAMPLE_RATE)], None),
        ("10 minutes", lambda: np.tile(utterance(ENROL["JFK"], DATA), 110), None),
    ],
)
def test_a_bad_sample_is_a_clear_400(server, tmp_path, name, make, code):
    with client(server, KEY) as c:
        r = enrol(c, f"bad {name}", wav(make(), tmp_path, "sample.wav"))
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["param"] == "audio" and error["message"]
        if code:
            assert error["code"] == code
        assert f"bad {name}" not in [v["name"] for v in c.get("/api/voices").json()["voices"]]


def test_non_audio_and_bad_names_are_400(server, tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all " * 100)
    jfk = wav(utterance(ENROL["JFK"], DATA), tmp_path, "jfk.wav")
    with client(server, KEY) as c:
        assert enrol(c, "Notes", text).status_code == 400
        for bad in ("", "   ", "a\x00b", "x" * 65):
            r = enrol(c, bad, jfk)
            assert r.status_code == 400, (bad, r.text)
        assert c.patch("/api/voices/nope", json={"name": "x"}).status_code == 404


def test_a_speaker_of_a_finished_task_is_enrolled_by_name(server, meeting):
    path, _ = meeting
    with client(server, OTHER) as c:
        r = c.post(
            "/api/task",
            data={"mode": "asr", "diarize": "true"},
            files={"audio": (path.name, path.read_bytes())},
        )
        task_id = r.json()["task_id"]
        task = finished(c, task_id)
        first = task["result"]["segments"][0]["speaker"]
        r = c.post(
            "/api/voices/from-task", json={"task_id": task_id, "speaker": first, "name": "Jack"}
        )
        assert r.status_code == 201, r.text
        # The task is OTHER's: KEY cannot take a voice out of it.
    with client(server, KEY) as c:
        r = c.post(
            "/api/voices/from-task", json={"task_id": task_id, "speaker": first, "name": "Jack"}
        )
        assert r.status_code == 404
    with client(server, OTHER) as c:
        r = c.post(
            "/api/process",
            data={"mode": "asr", "voices": "Jack"},
            files={"audio": (path.name, path.read_bytes())},
        )
        assert r.status_code == 200
        assert any(s["speaker"] == "Jack" for s in r.json()["segments"])


def test_a_live_turn_carries_its_known_speaker(server, library):
    """``/v1/realtime?voices=*``: each completed turn names its speaker when the voice is
    one of the key's, null for a stranger."""
    import json

    from websockets.sync.client import connect

    turns = [
        ("JFK", Line("jfk", "en/jfk.flac", 5.5, None)),
        (None, Line("stranger", "en/sense_and_sensibility_0920.wav")),
        ("Reader", Line("sonnets", "en/sonnet_2.mp3", 20.0, 30.0)),
    ]
    url = server.replace("http://", "ws://") + "/v1/realtime?intent=transcription&voices=*"
    with connect(url, additional_headers={"X-API-Key": KEY}, open_timeout=10) as ws:
        manual(ws)
        for expected, line in turns:
            event = transcribed(ws, realtime_pcm(utterance(line, DATA)))
            assert event["speaker"] == expected, (expected, event)
            if expected:
                assert 0.63 <= event["speaker_confidence"] <= 1.0
    # Another key's session cannot name KEY's voices.
    with connect(
        url.replace("voices=*", "voices=JFK"), additional_headers={"X-API-Key": OTHER}
    ) as ws:
        refusal = json.loads(ws.recv(timeout=30))
        assert refusal["type"] == "error" and refusal["error"]["code"] == "unknown_voice"


def test_a_task_names_the_voices_of_its_key(server, library, meeting):
    """The worker looks the voices up for the task's own key, when it runs."""
    path, reference = meeting
    with client(server, KEY) as c:
        r = c.post(
            "/api/task",
            data={"mode": "asr", "voices": "JFK,Reader"},
            files={"audio": (path.name, path.read_bytes())},
        )
        assert r.status_code == 202, r.text
        assert "voice_prints" not in r.text
        task = finished(c, r.json()["task_id"])
    assert task["params"]["voices"] == ["JFK", "Reader"] and "voice_prints" not in task["params"]
    check_meeting(task["result"]["segments"], reference)
