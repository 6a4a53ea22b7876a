"""The live faces on Step-Audio-R1.1 backends (the vLLM stand-in, which checks every
request against the model's wire protocol and answers with a real Whisper transcript):
a turn goes through the pool as any window does."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from websockets.sync.client import connect

from stepaudio.api import create_app
from stepaudio.config import BackendConfig, Settings
from stepaudio.testing import StandIn
from stepaudio.testing.longaudio import load_pcm
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip

pytestmark = pytest.mark.model  # the stand-in transcribes with the real Whisper


def test_a_live_turn_goes_through_the_backends(settings: Settings):
    pcm = load_pcm(clip("en/jfk.flac"))
    idx = np.arange(0, len(pcm) - 1, 2 / 3)
    data = np.interp(idx, np.arange(len(pcm)), pcm).astype("<i2").tobytes()
    with StandIn(data_dir=settings.data_dir) as backend:
        config = settings.updated(backends=[BackendConfig(url=backend.url)])
        with serve_in_thread(create_app(config), settings=config) as url:
            ws_url = url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"
            with connect(ws_url, open_timeout=30) as ws:
                session = {"type": "transcription", "audio": {"input": {"turn_detection": None}}}
                ws.send(json.dumps({"type": "session.update", "session": session}))
                for i in range(0, len(data), 48000):
                    audio = base64.b64encode(data[i : i + 48000]).decode()
                    ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
                ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
                while True:
                    event = json.loads(ws.recv(timeout=120))
                    assert event["type"] != "error", event
                    if event["type"].endswith("transcription.completed"):
                        break
        assert "fellow americans" in event["transcript"].lower(), event
        assert backend.stats.violations == [] and backend.stats.requests >= 1
