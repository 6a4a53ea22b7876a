"""The lifecycle on its own: one admission count, tickets given back however a run ends,
PCM as a source, the outcome recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stepaudio.api.errors import websocket_error
from stepaudio.audio import SAMPLE_RATE
from stepaudio.config import Settings
from stepaudio.errors import InvalidAudio, QueueFull, StepAudioError, Unauthorized
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.run import Pipeline
from stepaudio.service import Admission, Lifecycle, Pcm
from stepaudio.testing.scripted import ScriptedEngine
from tests.helpers import clip

pytestmark = pytest.mark.anyio


def test_admission_counts_the_whole_and_each_share():
    admission = Admission(limit=3, per_key=2)
    a1, a2 = admission.admit("a"), admission.admit("a")
    with pytest.raises(QueueFull) as refused:
        admission.admit("a")
    assert refused.value.code == "key_queue_full" and refused.value.headers()["Retry-After"]
    b = admission.admit("b")
    with pytest.raises(QueueFull) as full:
        admission.admit("c")
    assert full.value.code == "queue_full"
    a1.release()
    a1.release()  # a second release gives nothing back twice
    assert admission.count == 2 and admission.by_owner == {"a": 1, "b": 1}
    for ticket in (a2, b):
        ticket.release()
    assert admission.count == 0 and not admission.by_owner


def test_without_shares_every_owner_counts_only_in_the_whole():
    admission = Admission(limit=2)
    admission.admit("a"), admission.admit("a")
    with pytest.raises(QueueFull):
        admission.admit("b")


def lifecycle(tmp_path: Path, engine: ScriptedEngine, limit: int = 4) -> Lifecycle:
    settings = Settings(data_dir=tmp_path, _env_file=None)
    return Lifecycle(Pipeline(engine, settings), Admission(limit))


async def test_pcm_is_a_source_and_leaves_no_file(tmp_path: Path):
    engine = ScriptedEngine()
    life = lifecycle(tmp_path, engine)
    tone = (np.sin(np.arange(3 * SAMPLE_RATE) / 8) * 8000).astype(np.int16)
    params = ProcessParams(mode=Mode.ASR)
    result = await life.run(Pcm(tone), params, face="live")
    assert result.usage.audio_seconds == pytest.approx(3.0, abs=0.01)
    assert "heard 3.00 s" in result.answer
    assert list((tmp_path / "tmp").glob("pcm-*")) == []
    assert life.stats.completed == 1 and life.admission.count == 0


async def test_a_failed_run_gives_its_place_back_and_counts_as_an_error(tmp_path: Path):
    def broken(job):
        raise RuntimeError("model fell over")

    life = lifecycle(tmp_path, ScriptedEngine(on_window=broken), limit=1)
    with pytest.raises(RuntimeError):
        await life.run(clip("en/jfk.flac"), ProcessParams(mode=Mode.ASR), face="seed", owner="k")
    assert life.admission.count == 0
    errors = life.metrics.registry.get_sample_value(
        "stepaudio_requests_total", {"face": "seed", "mode": "asr", "outcome": "error"}
    )
    assert errors == 1
    assert not life.metrics.registry.get_sample_value(
        "stepaudio_audio_seconds_total", {"face": "seed"}
    )


async def test_probe_refuses_before_admission(tmp_path: Path):
    life = lifecycle(tmp_path, ScriptedEngine(), limit=1)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    with pytest.raises(InvalidAudio):
        async with life.open(bad, ProcessParams(), face="seed", probe=True):
            pass
    assert life.admission.count == 0 and life.stats.completed == 0


async def test_a_held_ticket_is_used_not_counted_again(tmp_path: Path):
    life = lifecycle(tmp_path, ScriptedEngine(), limit=1)
    ticket = life.admission.admit("k")  # what the guard takes from the first header
    result = await life.run(clip("en/jfk.flac"), ProcessParams(), face="seed", ticket=ticket)
    assert result.answer and ticket.released and life.admission.count == 0


def test_websocket_errors_close_only_when_the_session_cannot_go_on():
    event, code = websocket_error(InvalidAudio("bad chunk", param="audio"))
    assert event == {"type": "error", "error": InvalidAudio("bad chunk", param="audio").to_dict()}
    assert code == 0
    assert websocket_error(Unauthorized("no key"))[1] == 1008
    assert websocket_error(QueueFull("busy"))[1] == 1013
    assert websocket_error(StepAudioError("internal"))[1] == 1011
