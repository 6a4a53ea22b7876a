"""The live faces on Step-Audio-R1.1 backends (the vLLM stand-in, which checks every
request against the model's wire protocol and answers with a real Whisper transcript):
a turn goes through the pool as any window does."""

from __future__ import annotations

import numpy as np
import pytest
from websockets.sync.client import connect

from stepaudio.api import create_app
from stepaudio.config import BackendConfig, Settings
from stepaudio.testing import StandIn
from stepaudio.testing.longaudio import load_pcm
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip
from tests.realtime_client import manual, transcribed

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
                manual(ws)
                event = transcribed(ws, data)
        assert "fellow americans" in event["transcript"].lower(), event
        assert backend.stats.violations == [] and backend.stats.requests >= 1
