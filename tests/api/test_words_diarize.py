"""Word times and speakers over HTTP (issue 13): the OpenAI SDK's own types, our JSON on
/api/process and /api/task, every subtitle and text format, and hostile values.

Word times and hostile values run on a scripted engine (no model): its windows describe
the audio they held (``heard 11.00 s, rms 1234``) and, when asked, time each word as
Whisper does (``worded``). Speakers are found in the voices, and labelled on Whisper's
segments: those tests are at the end, on the embedded engine.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from openai.types.audio import TranscriptionDiarized, TranscriptionVerbose

from stepaudio.api import create_app
from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.config import Settings
from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.testing.encode import write_audio
from stepaudio.testing.longaudio import load_pcm
from stepaudio.testing.scripted import ScriptedEngine, worded
from stepaudio.testing.server import serve_in_thread, serve_scripted
from stepaudio.testing.speakers import ENGLISH, conversation
from tests.helpers import DATA, clip, normalize_en

JFK = clip("en/jfk.flac")


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ScriptedEngine]]:
    with serve_scripted(
        tmp_path_factory.mktemp("words"), ScriptedEngine(on_window=worded)
    ) as served:
        yield served


@pytest.fixture
def web(scripted: tuple[str, ScriptedEngine]) -> Iterator[httpx.Client]:
    """A client of the scripted service, its engine with no window recorded yet."""
    url, engine = scripted
    engine.windows.clear()
    with httpx.Client(base_url=url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The two stereo_diarization voices one after the other, a second apart; and the
    moment between them."""
    left = load_pcm(clip("en/stereo_diarization_left.wav"))
    right = load_pcm(clip("en/stereo_diarization_right.wav"))
    pcm = np.concatenate([left, np.zeros(SAMPLE_RATE, np.int16), right])
    path = write_audio(pcm, tmp_path_factory.mktemp("voices") / "two_voices.wav")
    return path, (left.size + SAMPLE_RATE / 2) / SAMPLE_RATE


def post(client: httpx.Client, route: str, path: Path, **fields) -> httpx.Response:
    field = "file" if route.startswith("/v1") else "audio"
    with open(path, "rb") as f:
        return client.post(route, files={field: (path.name, f)}, data=fields)


def in_order(words: list[dict], start: float, end: float) -> bool:
    return all(start <= w["start"] <= w["end"] <= end for w in words) and all(
        a["end"] <= b["start"] for a, b in zip(words, words[1:], strict=False)
    )


def test_the_sdk_gets_words(scripted: tuple[str, ScriptedEngine]):
    server, engine = scripted
    engine.windows.clear()
    sdk = openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)
    with open(JFK, "rb") as f:
        got = sdk.audio.transcriptions.create(
            model="whisper-1",
            file=f,
            response_format="verbose_json",
            timestamp_granularities=["word"],
            language="en",
        )
    assert isinstance(got, TranscriptionVerbose) and got.words
    words = [w.model_dump() for w in got.words]
    assert in_order(words, 0.0, got.duration)
    assert normalize_en(" ".join(w["word"] for w in words)) == normalize_en(got.text)
    assert got.words[-1].end > 9  # JFK talks to the end of the clip
    # The engine's words, all of them, as it wrote them.
    assert [w["word"].strip() for w in words] == got.text.split()
    # Without the granularity, no words (OpenAI's behaviour).
    with open(JFK, "rb") as f:
        plain = sdk.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json", language="en"
        )
    assert plain.words is None
    assert [j.params.word_timestamps for j in engine.windows] == [True, False]


def test_process_gives_words_inside_each_segment(web: httpx.Client):
    r = post(web, "/api/process", JFK, mode="asr", language="en", word_timestamps="true")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["warnings"] == []
    for s in body["segments"]:
        assert s["words"] and in_order(s["words"], s["start"], s["end"]), s
    assert [w["word"].strip() for w in s["words"]] == s["text"].split()
    r = post(web, "/api/process", JFK, mode="asr", language="en")
    assert all(s["words"] is None for s in r.json()["segments"])


@pytest.mark.parametrize(
    "route, fields, param",
    [
        (
            "/v1/audio/transcriptions",
            {"timestamp_granularities[]": "sentence"},
            "timestamp_granularities",
        ),
        (
            "/v1/audio/transcriptions",
            {"timestamp_granularities": "word;drop"},
            "timestamp_granularities",
        ),
        (
            "/v1/audio/transcriptions",
            {"timestamp_granularities[]": "word", "response_format": "json"},
            "timestamp_granularities",
        ),
        ("/v1/audio/transcriptions", {"response_format": "diarised"}, "response_format"),
        ("/v1/audio/translations", {"response_format": "diarized_json"}, "response_format"),
        ("/v1/audio/transcriptions", {"diarize": "true", "num_speakers": "-1"}, "num_speakers"),
        ("/api/process", {"word_timestamps": "perhaps"}, "word_timestamps"),
        ("/api/process", {"diarize": "2"}, "diarize"),
        ("/api/process", {"diarize": "true", "num_speakers": "0"}, "num_speakers"),
        ("/api/process", {"diarize": "true", "num_speakers": "1e9"}, "num_speakers"),
        ("/api/process", {"diarize": "true", "max_speakers": "33"}, "max_speakers"),
        ("/api/process", {"min_speakers": "3", "max_speakers": "2"}, "max_speakers"),
        ("/api/process", {"num_speakers": "4", "max_speakers": "2"}, "num_speakers"),
        ("/api/task", {"diarize": "true", "min_speakers": "x"}, "min_speakers"),
    ],
)
def test_hostile_values_are_400_naming_the_field(
    web: httpx.Client, scripted: tuple[str, ScriptedEngine], route: str, fields: dict, param: str
):
    r = post(web, route, JFK, **fields)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param, r.json()
    assert scripted[1].windows == []


def data_url(path: Path) -> str:
    return "data:audio/wav;base64," + base64.b64encode(path.read_bytes()).decode()


def test_hostile_known_speakers(web: httpx.Client, tmp_path: Path):
    silence = write_audio(np.zeros(2 * SAMPLE_RATE, np.int16), tmp_path / "quiet.wav")
    jfk = data_url(clip("en/sr_english.wav"))  # short: a form field holds 1 MB at most
    cases = [
        (
            {"known_speaker_names[]": ["A", "B"], "known_speaker_references[]": [jfk]},
            "known_speaker_references",
        ),
        (
            {"known_speaker_names[]": ["A"], "known_speaker_references[]": ["hello"]},
            "known_speaker_references",
        ),
        (
            {
                "known_speaker_names[]": ["A"],
                "known_speaker_references[]": ["data:audio/wav;base64,%%%"],
            },
            "known_speaker_references",
        ),
        (
            {
                "known_speaker_names[]": ["A"],
                "known_speaker_references[]": [
                    "data:audio/wav;base64," + base64.b64encode(b"not audio at all").decode()
                ],
            },
            "known_speaker_references",
        ),
        (
            {"known_speaker_names[]": ["Quiet"], "known_speaker_references[]": [data_url(silence)]},
            "known_speaker_references",
        ),
        (
            {"known_speaker_names[]": list("ABCDE"), "known_speaker_references[]": [jfk] * 5},
            "known_speaker_names",
        ),
        (
            {"known_speaker_names[]": ["X", "X"], "known_speaker_references[]": [jfk] * 2},
            "known_speaker_names",
        ),
    ]
    for fields, param in cases:
        r = post(web, "/v1/audio/transcriptions", JFK, response_format="diarized_json", **fields)
        assert r.status_code == 400, (fields, r.text)
        assert r.json()["error"]["param"] == param, (fields, r.json())


# -- speakers, on the embedded engine ------------------------------------------


def test_two_voices_each_labelled_right_in_every_format(
    client: httpx.Client, server: str, two_voices: tuple[Path, float]
):
    path, cut = two_voices
    r = post(client, "/api/process", path, mode="asr", language="en", diarize="true")
    assert r.status_code == 200, r.text
    segments = r.json()["segments"]
    assert segments and all(s["words"] is None for s in segments)  # not asked for
    for s in segments:
        assert s["speaker"] == ("A" if s["end"] <= cut else "B"), segments

    sdk = openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)
    with open(path, "rb") as f:
        got = sdk.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="diarized_json", language="en"
        )
    assert isinstance(got, TranscriptionDiarized)
    assert [s.speaker for s in got.segments] == [s["speaker"] for s in segments]
    assert got.segments[0].type == "transcript.text.segment"

    vtt = post(client, "/v1/audio/transcriptions", path, response_format="vtt", diarize="true")
    assert "<v Speaker A>He began" in vtt.text and "<v Speaker B>The horizon" in vtt.text
    srt = post(client, "/v1/audio/transcriptions", path, response_format="srt", diarize="true")
    assert "Speaker A: He began" in srt.text and "Speaker B: The horizon" in srt.text
    text = post(client, "/v1/audio/transcriptions", path, response_format="text", diarize="true")
    assert text.text.startswith("Speaker A: He began") and "\n\nSpeaker B: The horizon" in text.text


def test_a_task_gets_speakers_and_words(client: httpx.Client, two_voices: tuple[Path, float]):
    path, cut = two_voices
    fields = {"mode": "asr", "language": "en", "diarize": "true", "word_timestamps": "true"}
    r = post(client, "/api/task", path, **fields)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 240
    while (view := client.get(f"/api/task/{r.json()['task_id']}").json())["status"] not in {
        "completed",
        "failed",
    }:
        assert time.monotonic() < deadline, view
        time.sleep(0.5)
    assert view["status"] == "completed", view
    segments = view["result"]["segments"]
    assert [s["speaker"] for s in segments] == ["A", "B"]
    assert all(s["words"] and in_order(s["words"], s["start"], s["end"]) for s in segments)


@pytest.fixture(scope="module")
def windowed(tmp_path_factory: pytest.TempPathFactory, embedded: EmbeddedEngine) -> Iterator[str]:
    """A server cutting ASR windows at 10 s: the session's engine, models loaded."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("windowed-speakers"), asr_window_s=10, _env_file=None
    )
    engine = copy.copy(embedded)
    engine.asr_window_s = settings.pipeline.asr_window_s
    with serve_in_thread(create_app(settings, engine=engine), settings=settings) as url:
        yield url


def test_a_voice_keeps_its_label_across_windows(windowed: str, tmp_path: Path):
    lines = [
        ENGLISH[0],
        ENGLISH[1],
        ENGLISH[2],
        ENGLISH[7],
        ENGLISH[6],
    ]  # jfk, austen, left, jfk, austen
    pcm, reference = conversation(lines, DATA)
    path = write_audio(pcm, tmp_path / "meeting.wav")
    with httpx.Client(base_url=windowed, timeout=300) as client:
        r = post(client, "/api/process", path, mode="asr", language="en", diarize="true")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["windows"] >= 3
    given: dict[str, set[str]] = {}
    for s in body["segments"]:
        mid = (s["start"] + s["end"]) / 2
        who = min(reference, key=lambda t: max(t.start - mid, mid - t.end, 0.0)).speaker
        given.setdefault(who, set()).add(s["speaker"])
    # Each voice has one label, in every window it speaks in, and no two share one.
    assert all(len(labels) == 1 for labels in given.values()), given
    assert len({next(iter(labels)) for labels in given.values()}) == 3, given


def test_known_speakers_are_named_over_v1(client: httpx.Client, two_voices: tuple[Path, float]):
    path, _ = two_voices
    right = data_url(clip("en/stereo_diarization_right.wav"))
    fields = {
        "response_format": "diarized_json",
        "language": "en",
        "known_speaker_names[]": ["Bob"],
        "known_speaker_references[]": [right],
    }
    r = post(client, "/v1/audio/transcriptions", path, **fields)
    assert r.status_code == 200, r.text
    got = TranscriptionDiarized.model_validate(r.json())
    assert [s.speaker for s in got.segments] == ["A", "Bob"]
    assert right[30:60] not in r.text  # the reference is not echoed


def test_diarized_stream_sends_segments_with_speakers(
    client: httpx.Client, two_voices: tuple[Path, float]
):
    from openai.types.audio import TranscriptionTextSegmentEvent

    path, _ = two_voices
    fields = {"response_format": "diarized_json", "stream": "true", "language": "en"}
    r = post(client, "/v1/audio/transcriptions", path, **fields)
    assert r.status_code == 200, r.text
    events = [
        json.loads(line[6:])
        for line in r.text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "transcript.text.done" and kinds[-3:-1] == ["transcript.text.segment"] * 2
    segments = [TranscriptionTextSegmentEvent.model_validate(e) for e in events[-3:-1]]
    assert [s.speaker for s in segments] == ["A", "B"]
