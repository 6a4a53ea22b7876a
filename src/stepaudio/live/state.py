"""What the live sessions of one service share."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np

from stepaudio.config import LiveSettings
from stepaudio.live.session import Heard, Word
from stepaudio.params import ProcessParams
from stepaudio.service import Admission, Lifecycle, Pcm


@dataclass
class LiveState:
    sessions: Admission
    """One place per open session, per key and in all."""
    partials: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Partial transcripts are a courtesy: one at a time in the whole service, and a
    session finding one running skips its own."""
    finals: int = 0
    """Final texts running or waiting: while there are any, no partial starts (on a
    busy machine the final texts are what keeps sessions in real time)."""

    @classmethod
    def from_settings(cls, live: LiveSettings) -> LiveState:
        return cls(Admission(live.max_sessions, live.max_sessions_per_key))

    async def transcribe(
        self,
        lifecycle: Lifecycle,
        samples: np.ndarray,
        params: ProcessParams,
        *,
        final: bool,
        face: str,
        owner: str,
    ) -> Heard | None:
        """A turn's text through the service's lifecycle, as any request. A partial is
        declined (None) while another partial or any final text is running or waiting,
        and runs in the background lane so that final texts (anyone's) go first; its
        audio is counted as ``{face}_partial`` (heard again, not new).

        Every text is a draft: Whisper's encoder reads the turn and 3 s of padding, not
        30 s, for half the time at the same WER on the shared English turns (6.73 %
        either way: docs/benchmarks.md, "Live transcription"); the embedded engine never
        drafts Mandarin, where it costs 4 CER points."""
        params = params.model_copy(update={"draft": True})
        if final:
            self.finals += 1
            try:
                return await _run(lifecycle, samples, params, face, owner, background=False)
            finally:
                self.finals -= 1
        if self.partials.locked() or self.finals:
            return None
        async with self.partials:
            face = f"{face}_partial"
            return await _run(lifecycle, samples, params, face, owner, background=True)


async def _run(
    lifecycle: Lifecycle,
    samples: np.ndarray,
    params: ProcessParams,
    face: str,
    owner: str,
    *,
    background: bool,
) -> Heard:
    params = params.model_copy(update={"verbatim": True})
    async with lifecycle.open(Pcm(samples), params, face=face, owner=owner, admit=False) as run:
        result = await run.result(background=background)
    words = tuple(
        Word(w.word.strip(), w.start, w.end)
        for segment in result.segments
        for w in segment.words or ()
    )
    return Heard(result.transcript or result.answer, words)
