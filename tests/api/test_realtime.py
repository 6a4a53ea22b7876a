"""``/v1/realtime?intent=transcription`` on the scripted engine: the protocol, its two
session shapes, the errors a client can provoke and every bound, attacked. The real
Silero VAD runs (it is small); the transcriber is scripted (``heard S s``), so what is
checked is what reached it and what came back on the wire. The real model, through the
``openai`` SDK, is tests/live/test_realtime_model.py.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from openai import OpenAI
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.engines.base import ModelOutput, Segment, Usage, WindowJob, Word
from stepaudio.testing.encode import realtime_pcm
from stepaudio.testing.longaudio import load_pcm
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread, serve_scripted
from tests import realtime_client
from tests.helpers import clip
from tests.realtime_client import append, send, until

KEY = "live-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


JFK = realtime_pcm(load_pcm(clip("en/jfk.flac")))
SILENCE = bytes(24000 * 2)  # one second


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ScriptedEngine]]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("live"),
        api_keys=[KEY, "other-key"],
        live_max_sessions=3,
        live_max_sessions_per_key=2,
        live_idle_timeout_s=2,
        live_max_lead_s=60,
        _env_file=None,
    )
    engine = ScriptedEngine()
    with serve_in_thread(create_app(settings, engine=engine), settings=settings) as url:
        yield url.replace("http://", "ws://"), engine


def open_session(base: str, query: str = "?intent=transcription", **kw: Any) -> ClientConnection:
    kw.setdefault("additional_headers", AUTH)
    return connect(f"{base}/v1/realtime{query}", open_timeout=10, **kw)


def manual(ws: ClientConnection) -> None:
    realtime_client.manual(ws)
    until(ws, "session.updated")


def test_a_session_starts_with_the_current_shape(live):
    base, _ = live
    with open_session(base) as ws:
        created = json.loads(ws.recv(timeout=10))
        assert created["type"] == "session.created" and created["event_id"]
        session = created["session"]
        assert session["type"] == "transcription"
        assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        vad = session["audio"]["input"]["turn_detection"]
        assert vad == {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
        }


def test_client_commits_a_turn_and_gets_its_transcript(live):
    base, engine = live
    with open_session(base) as ws:
        until(ws, "session.created")
        manual(ws)
        append(ws, JFK)
        send(ws, type="input_audio_buffer.commit")
        committed, _ = until(ws, "input_audio_buffer.committed")
        assert committed["previous_item_id"] is None
        done, seen = until(ws, "conversation.item.input_audio_transcription.completed")
        assert done["item_id"] == committed["item_id"] and done["content_index"] == 0
        deltas = [e["delta"] for e in seen if e["type"].endswith(".delta")]
        assert "".join(deltas) == done["transcript"]
        # The whole 11 s reached the engine, resampled to 16 kHz.
        assert re.fullmatch(r"heard 11\.0\d s, rms \d+", done["transcript"]), done
        assert done["usage"] == {"type": "duration", "seconds": pytest.approx(11.0, abs=0.05)}
        # A second turn names the first as its predecessor.
        append(ws, JFK[: 24000 * 2 * 2])
        send(ws, type="input_audio_buffer.commit")
        second, _ = until(ws, "input_audio_buffer.committed")
        assert second["previous_item_id"] == committed["item_id"]


def test_server_vad_finds_the_turns_of_a_recording(live):
    base, _ = live
    with open_session(base) as ws:
        until(ws, "session.created")
        append(ws, SILENCE + JFK + SILENCE * 2)
        started, seen = until(ws, "input_audio_buffer.speech_started")
        assert 0 < started["audio_start_ms"] < 1500
        stopped, more = until(ws, "input_audio_buffer.speech_stopped")
        assert stopped["item_id"] == started["item_id"]
        assert stopped["audio_end_ms"] > started["audio_start_ms"]
        done, rest = until(ws, "conversation.item.input_audio_transcription.completed")
        assert done["item_id"] == started["item_id"]
        deltas = [e for e in seen + more + rest if e["type"].endswith(".delta")]
        assert {e["item_id"] for e in deltas} == {done["item_id"]}
        assert "".join(e["delta"] for e in deltas) == done["transcript"]


def test_the_older_shape_and_g711(live):
    base, _ = live
    with open_session(base) as ws:
        until(ws, "session.created")
        send(
            ws,
            type="transcription_session.update",
            session={
                "input_audio_format": "g711_ulaw",
                "input_audio_transcription": {"model": "whisper-1", "language": "en"},
                "turn_detection": None,
            },
        )
        updated, _ = until(ws, "transcription_session.updated")
        assert updated["session"]["input_audio_format"] == "g711_ulaw"
        assert updated["session"]["turn_detection"] is None
        append(ws, bytes([0xFF]) * 8000 * 3)  # three seconds of μ-law silence
        send(ws, type="input_audio_buffer.commit")
        done, _ = until(ws, "conversation.item.input_audio_transcription.completed")
        assert re.fullmatch(r"heard 3\.0\d s, rms 0", done["transcript"]), done


def test_clear_drops_the_uncommitted_audio(live):
    base, _ = live
    with open_session(base) as ws:
        until(ws, "session.created")
        manual(ws)
        append(ws, JFK)
        send(ws, type="input_audio_buffer.clear")
        until(ws, "input_audio_buffer.cleared")
        send(ws, type="input_audio_buffer.commit", event_id="mine")
        error, _ = until(ws, "error")
        assert error["error"]["code"] == "input_audio_buffer_commit_empty"
        assert error["error"]["event_id"] == "mine"


def session_update(**audio_input: Any) -> str:
    session = {"type": "transcription", "audio": {"input": audio_input}}
    return json.dumps({"type": "session.update", "session": session})


@pytest.mark.parametrize(
    "message, code",
    [
        ("{not json", "invalid_json"),
        ('["a list"]', "bad_request"),
        ('{"type": "response.create"}', "unknown_event"),
        ('{"type": "input_audio_buffer.append", "audio": "%%%not base64"}', "invalid_parameter"),
        ('{"type": "input_audio_buffer.append", "audio": 12}', "invalid_parameter"),
        ('{"type": "session.update", "session": {"type": "realtime"}}', "invalid_parameter"),
        (session_update(format={"type": "audio/wav"}), "invalid_parameter"),
        (session_update(format={"type": "audio/pcm", "rate": 44100}), "invalid_parameter"),
        (session_update(transcription={"model": "gpt-9"}), "invalid_parameter"),
        (session_update(transcription={"language": "x" * 40}), "invalid_parameter"),
        (session_update(transcription={"prompt": 7}), "invalid_parameter"),
        (
            session_update(turn_detection={"type": "server_vad", "threshold": 7}),
            "invalid_parameter",
        ),
        (session_update(turn_detection={"type": "semantic_vad"}), "invalid_parameter"),
        ('{"type": "input_audio_buffer.commit"}', "input_audio_buffer_commit_empty"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None,
)
def test_bad_events_get_an_error_event_and_the_session_goes_on(live, message: str, code: str):
    base, _ = live
    with open_session(base) as ws:
        until(ws, "session.created")
        manual(ws)
        ws.send(message)
        error, _ = until(ws, "error")
        assert error["error"]["code"] == code, error
        assert error["error"]["type"] == "invalid_request_error" and error["error"]["message"]
        # Still serving.
        append(ws, JFK[: 24000 * 2])
        send(ws, type="input_audio_buffer.commit")
        until(ws, "conversation.item.input_audio_transcription.completed")


def test_only_transcription_sessions(live):
    base, _ = live
    with open_session(base, "?model=gpt-realtime") as ws:
        error, _ = until(ws, "error")
        assert error["error"]["param"] == "intent"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 1008


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_no_key_or_a_wrong_one_is_refused_before_the_upgrade(live, headers):
    base, _ = live
    with pytest.raises(InvalidStatus) as refused:
        open_session(base, additional_headers=headers)
    assert refused.value.response.status_code == 403


def test_a_browser_sends_its_key_as_a_subprotocol(live):
    base, _ = live
    protocols = ["realtime", f"openai-insecure-api-key.{KEY}"]
    with open_session(base, additional_headers={}, subprotocols=protocols) as ws:
        assert ws.subprotocol == "realtime"
        until(ws, "session.created")
    with pytest.raises(InvalidStatus):
        open_session(
            base, additional_headers={}, subprotocols=["realtime", "openai-insecure-api-key.nope"]
        )


def test_a_page_session_counts_only_from_our_own_origin(live):
    base, _ = live
    http = base.replace("ws://", "http://")
    import httpx

    r = httpx.post(f"{http}/login", data={"key": KEY}, follow_redirects=False)
    cookie = r.headers["set-cookie"].split(";", 1)[0]
    host = http.split("//", 1)[1]
    with open_session(
        base, additional_headers={"Cookie": cookie, "Origin": f"http://{host}"}
    ) as ws:
        until(ws, "session.created")
    with pytest.raises(InvalidStatus):
        open_session(base, additional_headers={"Cookie": cookie, "Origin": "https://evil.example"})


def test_sessions_per_key_and_in_all(live):
    base, _ = live
    first, second = open_session(base), open_session(base)
    try:
        for ws in (first, second):
            until(ws, "session.created")
        with open_session(base) as third:
            error, _ = until(third, "error")
            assert error["error"]["code"] == "session_limit_reached"
            with pytest.raises(ConnectionClosed) as closed:
                third.recv(timeout=5)
            assert closed.value.rcvd.code == 1013
        # Another key still gets the last place; the running sessions are unharmed.
        with open_session(base, additional_headers={"Authorization": "Bearer other-key"}) as other:
            until(other, "session.created")
        manual(first)
        append(first, JFK[: 24000 * 2])
        send(first, type="input_audio_buffer.commit")
        until(first, "conversation.item.input_audio_transcription.completed")
    finally:
        first.close()
        second.close()
    # A client gone mid-turn frees its place.
    for _ in range(3):
        ws = open_session(base)
        until(ws, "session.created")
        append(ws, JFK[: 24000 * 2])
        ws.close()
    time.sleep(0.5)
    with open_session(base) as again:
        until(again, "session.created")


def test_an_oversized_append_is_refused(live):
    base, _ = live
    with open_session(base) as ws:
        until(ws, "session.created")
        ws.send(
            json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (17 * 1024 * 1024)})
        )
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1009  # too big for the protocol itself


def test_a_silent_client_is_closed_after_the_idle_timeout(live):
    base, _ = live
    with open_session(base) as ws:
        until(ws, "session.created")
        error, _ = until(ws, "error", timeout=10)
        assert error["error"]["code"] == "idle_timeout"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)


def test_a_flood_faster_than_real_time_is_read_at_real_time(tmp_path):
    """Three seconds of audio sent at once: the server reads it no faster than real time
    plus the allowed lead (half a second here), so a flood waits in the socket, not in
    our memory."""
    settings = Settings(data_dir=tmp_path, live_max_lead_s=0.5, _env_file=None)
    app = create_app(settings, engine=ScriptedEngine())
    with (
        serve_in_thread(app, settings=settings) as url,
        open_session(url.replace("http://", "ws://"), additional_headers={}) as ws,
    ):
        until(ws, "session.created")
        manual(ws)
        started = time.monotonic()
        append(ws, SILENCE * 3, step=4800)
        send(ws, type="input_audio_buffer.commit")
        until(ws, "input_audio_buffer.committed")
        assert time.monotonic() - started >= 3 - 0.5 - 0.3


def test_the_openai_sdk_connects_and_transcribes(live):
    """The real client library, unmodified: its own URL, auth and event parsing."""
    base, _ = live
    client = OpenAI(base_url=base.replace("ws://", "http://") + "/v1", api_key=KEY)
    with client.realtime.connect(
        model="gpt-4o-transcribe", extra_query={"intent": "transcription"}
    ) as conn:
        conn.session.update(
            session={"type": "transcription", "audio": {"input": {"turn_detection": None}}}
        )
        conn.input_audio_buffer.append(audio=base64.b64encode(JFK).decode())
        conn.input_audio_buffer.commit()
        for event in conn:
            if event.type == "conversation.item.input_audio_transcription.completed":
                assert event.transcript.startswith("heard 11.0")
                break
            assert event.type != "error", event


def test_a_translation_session_through_the_sdk(live):
    """OpenAI's translation session, with its own client: the source text as it is
    spoken, each turn translated after it, append-only, then ``session.closed``."""
    base, engine = live
    engine.windows.clear()
    client = OpenAI(base_url=base.replace("ws://", "http://") + "/v1", api_key=KEY)
    with client.realtime.translations.connect(model="gpt-realtime-translate") as conn:
        created = conn.recv()
        assert created.type == "session.created" and created.session.type == "translation"
        assert created.session.audio.output.language == "en"
        conn.session.update(
            session={
                "audio": {
                    "input": {"transcription": {"model": "gpt-4o-transcribe"}},
                    "output": {"language": "zh"},
                }
            }
        )
        assert conn.recv().type == "session.updated"
        data = SILENCE + JFK + SILENCE * 2
        for i in range(0, len(data), 9600):
            conn.session.input_audio_buffer.append(
                audio=base64.b64encode(data[i : i + 9600]).decode()
            )
        source, target = [], []
        while not target:
            event = conn.recv()
            assert event.type != "error", event
            if event.type == "session.input_transcript.delta":
                source.append(event.delta)
            elif event.type == "session.output_transcript.delta":
                target.append(event.delta)
        conn.session.close()
        while (event := conn.recv()).type != "session.closed":
            pass
    turns = r"heard \d+\.\d\d s, rms \d+( heard \d+\.\d\d s, rms \d+)*"
    assert re.fullmatch(turns, "".join(source)), source
    assert re.fullmatch(turns, "".join(target)), target
    translated = [w for w in engine.windows if w.mode.value == "translate"]
    assert translated and translated[-1].params.target_lang == "Chinese"


def test_a_translation_into_a_language_the_model_does_not_write_is_an_error(live):
    base, _ = live
    with connect(
        f"{base}/v1/realtime/translations", open_timeout=10, additional_headers=AUTH
    ) as ws:
        until(ws, "session.created")
        send(ws, type="session.update", session={"audio": {"output": {"language": "Klingon"}}})
        error, _ = until(ws, "error")
        assert error["error"]["code"] == "invalid_parameter", error
        assert "Klingon" in error["error"]["message"]
        send(ws, type="session.update", session={"audio": {"output": {"language": "Deutsch"}}})
        until(ws, "session.updated")


def test_a_half_open_client_is_dropped_by_pings(tmp_path):
    """A client that opens a session and then answers nothing, not even pings (its
    machine gone, the connection half-open), loses its session after the ping timeout:
    the only place is free again for the next one."""
    import socket

    with serve_scripted(tmp_path, live_max_sessions=1, live_ping_interval_s=0.5) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        raw = socket.create_connection((host, int(port)))
        raw.sendall(
            b"GET /v1/realtime?intent=transcription HTTP/1.1\r\nHost: x\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        assert raw.recv(4096).startswith(b"HTTP/1.1 101")
        try:
            base = url.replace("http://", "ws://")
            with open_session(base, additional_headers={}) as refused:
                error, _ = until(refused, "error")
                assert error["error"]["code"] == "session_limit_reached"
            time.sleep(2.5)  # two ping intervals unanswered, and some slack
            with open_session(base, additional_headers={}) as ws:
                until(ws, "session.created")
        finally:
            raw.close()


def worded(job: WindowJob) -> ModelOutput:
    """Two words a second, timed from the window's start, when times are asked for."""
    seconds = len(job.pcm) / 16000
    words = [Word(f"w{i}", i / 2, i / 2 + 0.4) for i in range(int(seconds * 2))]
    text = " ".join(w.word for w in words)
    segment = Segment(0.0, seconds, text, words=words if job.params.word_timestamps else None)
    return ModelOutput(text, segments=[segment], usage=Usage(audio_seconds=seconds))


def test_word_times_when_asked_from_the_sessions_start(tmp_path):
    """Our addition: ``include: ["item.input_audio_transcription.words"]`` puts each word's
    times (from the session's start) in ``completed``; without it, no ``words``."""
    with serve_scripted(tmp_path, ScriptedEngine(on_window=worded)) as (url, _):
        base = url.replace("http://", "ws://")
        with open_session(base, additional_headers={}) as ws:
            until(ws, "session.created")
            send(
                ws,
                type="session.update",
                session={
                    "type": "transcription",
                    "audio": {"input": {"turn_detection": None}},
                    "include": ["item.input_audio_transcription.words"],
                },
            )
            until(ws, "session.updated")
            for _ in range(2):
                append(ws, JFK[: 24000 * 2 * 7 // 5])  # 1.4 s a turn: two words
                send(ws, type="input_audio_buffer.commit")
            first, _ = until(ws, "conversation.item.input_audio_transcription.completed")
            second, _ = until(ws, "conversation.item.input_audio_transcription.completed")
        assert [w["start"] for w in first["words"]] == [0.0, 0.5]
        assert [w["start"] for w in second["words"]] == [
            pytest.approx(1.4, abs=0.02),
            pytest.approx(1.9, abs=0.02),
        ]
        assert [w["word"] for w in second["words"]] == ["w0", "w1"]
        with open_session(base, additional_headers={}) as ws:
            until(ws, "session.created")
            manual(ws)
            append(ws, JFK[: 24000 * 2])
            send(ws, type="input_audio_buffer.commit")
            plain, _ = until(ws, "conversation.item.input_audio_transcription.completed")
        assert "words" not in plain


def test_a_session_saved_as_a_task(tmp_path):
    """``save=MODE``: the session's audio becomes a task of that mode when it ends, by
    the client's ``session.close`` (the task id is said) or by a disconnect (the task is
    in the key's list); a bad mode refuses the session at once."""
    import httpx

    with serve_scripted(tmp_path, api_keys=[KEY], task_poll_s=0.1) as (url, _):
        base = url.replace("http://", "ws://")
        with open_session(base, "?intent=transcription&save=asr") as ws:
            until(ws, "session.created")
            manual(ws)
            append(ws, JFK)
            send(ws, type="input_audio_buffer.commit")
            send(ws, type="session.close")
            saved, _ = until(ws, "stepaudio.session.saved")
            until(ws, "session.closed")
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
            deadline = time.monotonic() + 30
            while (task := client.get(f"/api/task/{saved['task_id']}").json())[
                "status"
            ] != "completed":
                assert (
                    task["status"] in ("pending", "processing") and time.monotonic() < deadline
                ), task
                time.sleep(0.1)
            assert re.fullmatch(r"heard 11\.0\d s, rms \d+", task["result"]["transcript"]), task
            # A client that just goes away still leaves its session as a task.
            ws = open_session(base, "?intent=transcription&save=s2t")
            until(ws, "session.created")
            append(ws, JFK[: 24000 * 2 * 2])
            time.sleep(0.3)
            ws.close()
            deadline = time.monotonic() + 10
            while not any(
                t["params"]["mode"] == "s2t" for t in client.get("/api/tasks").json()["tasks"]
            ):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        with open_session(base, "?intent=transcription&save=poem") as ws:
            error, _ = until(ws, "error")
            assert error["error"]["param"] == "save"


def test_live_turns_go_through_a_cascade(tmp_path):
    """Under a cascade engine, each hypothesis and each turn's final text is one call to
    the configured transcription server (here: this service on a scripted engine, a real
    server on loopback speaking OpenAI's protocol)."""
    with serve_scripted(tmp_path / "asr") as (asr_url, asr_engine):
        settings = Settings(
            data_dir=tmp_path / "gateway",
            engine="cascade",
            cascade={"transcription_url": asr_url},
            live_max_lead_s=60,
            _env_file=None,
        )
        with serve_in_thread(create_app(settings), settings=settings) as url:
            base = url.replace("http://", "ws://")
            with open_session(base, additional_headers={}) as ws:
                until(ws, "session.created")
                manual(ws)
                append(ws, JFK)
                send(ws, type="input_audio_buffer.commit")
                done, seen = until(ws, "conversation.item.input_audio_transcription.completed")
    assert re.fullmatch(r"heard 11\.\d\d s, rms \d+", done["transcript"]), done
    deltas = "".join(e["delta"] for e in seen if e["type"].endswith("transcription.delta"))
    assert deltas == done["transcript"]
    # Every call reached the transcription server as a window of the turn's audio.
    assert asr_engine.windows and max(len(w.pcm) for w in asr_engine.windows) >= 16000 * 10
