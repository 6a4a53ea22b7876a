"""A live session kept as a task (``/v1/realtime?intent=transcription&save=MODE``): its
audio is written to a WAV file as it arrives, and when the session ends (the client's
``session.close``, a disconnect, a timeout) the file becomes a task of that mode, owned by
the session's key, like an upload to ``/api/task`` — summary, speakers and downloads
follow as for any task."""

from __future__ import annotations

import hashlib
import secrets
import wave
from pathlib import Path

import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.params import ProcessParams
from stepaudio.tasks import AsyncTaskStore
from stepaudio.tasks.records import TaskRecord


class SessionRecording:
    def __init__(self, tmp_dir: Path, params: ProcessParams):
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self.params = params
        self.path = tmp_dir / f"live-{secrets.token_hex(8)}.wav"
        # Open for the session's whole life, closed by close()/save()/discard().
        self._wav: wave.Wave_write | None = wave.open(str(self.path), "wb")  # noqa: SIM115
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(SAMPLE_RATE)
        self.samples = 0

    def write(self, samples: np.ndarray) -> None:
        if self._wav is not None and len(samples):
            self._wav.writeframes(samples.astype("<i2").tobytes())
            self.samples += len(samples)

    async def save(self, store: AsyncTaskStore, owner: str, filename: str) -> TaskRecord | None:
        """The recording as a task (None if it holds no audio); the file is removed."""
        self.close()
        try:
            if self.samples == 0:
                return None
            digest = hashlib.sha256()
            with open(self.path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            task, _ = await store.create(
                owner=owner,
                params=self.params.model_dump(mode="json"),
                upload=self.path,
                sha256=digest.hexdigest(),
                size=self.path.stat().st_size,
                filename=filename,
            )
            return task
        finally:
            self.discard()

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
