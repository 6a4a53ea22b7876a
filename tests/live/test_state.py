"""What live sessions share: which transcriptions are drafts, which partials are skipped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.config import LiveSettings, Settings
from stepaudio.live.state import LiveState
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.run import Pipeline
from stepaudio.service import Admission, Lifecycle
from stepaudio.testing.scripted import ScriptedEngine

pytestmark = pytest.mark.anyio

TONE = (np.sin(np.arange(2 * SAMPLE_RATE) / 8) * 8000).astype(np.int16)
ASR = ProcessParams(mode=Mode.ASR)


def setup(tmp_path: Path) -> tuple[LiveState, Lifecycle, ScriptedEngine]:
    engine = ScriptedEngine(delay_s=0.2)
    settings = Settings(data_dir=tmp_path, _env_file=None)
    life = Lifecycle(Pipeline(engine, settings), Admission(8))
    return LiveState.from_settings(LiveSettings()), life, engine


async def test_every_live_text_is_a_verbatim_draft(tmp_path: Path) -> None:
    state, life, engine = setup(tmp_path)
    await state.transcribe(life, TONE, ASR, final=True, face="t", owner="o")
    await state.transcribe(life, TONE, ASR, final=False, face="t", owner="o")
    assert [job.params.draft for job in engine.windows] == [True, True]
    assert all(job.params.verbatim for job in engine.windows)


async def test_partials_wait_while_finals_run(tmp_path: Path) -> None:
    state, life, engine = setup(tmp_path)
    finals = [
        asyncio.create_task(state.transcribe(life, TONE, ASR, final=True, face="t", owner=k))
        for k in "abc"
    ]
    await asyncio.sleep(0.05)
    # While final texts run or wait, a partial is declined at once.
    assert await state.transcribe(life, TONE, ASR, final=False, face="t", owner="d") is None
    heard = await asyncio.gather(*finals)
    assert all(h is not None and h.text for h in heard)
    assert len(engine.windows) == 3  # the three finals; the partial never ran
    assert state.finals == 0
