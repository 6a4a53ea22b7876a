"""Streaming decode to 16 kHz mono int16, as small generator stages.

The decoded samples go straight to a raw file that is then memory-mapped, so a recording
of any length is held decoded at most once, and mostly by the page cache rather than the
process: windows are views into the map, never copies of the whole.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import av
import numpy as np

from stepaudio.audio.limits import DurationCap
from stepaudio.audio.probe import audio_stream, ffmpeg_reason, open_container
from stepaudio.errors import InvalidAudio

SAMPLE_RATE = 16000
_FLUSH_BYTES = 1 << 20


def _frames(container: av.container.InputContainer) -> Iterator[av.AudioFrame]:
    stream = audio_stream(container)
    if stream.codec_context is not None:  # as the stream forwards it (PyAV stubs lack it)
        stream.codec_context.thread_type = "AUTO"
    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            # A damaged packet mid-stream is skipped, as ffmpeg's own decoder does.
            continue


def _batched(frames: Iterable[av.AudioFrame], seconds: float = 2.0) -> Iterator[av.AudioFrame]:
    """Join small decoded frames into frames of about ``seconds``.

    Resampling per codec frame (1,152 samples for mp3) costs more in call overhead than in
    arithmetic; batching makes the whole decode about as fast as ffmpeg's own.
    """
    fifo: av.AudioFifo | None = None
    for frame in frames:
        # Broken timestamps make the FIFO and the resampler raise; neither needs them.
        frame.pts = None
        if fifo is None:
            fifo = av.AudioFifo()
        try:
            fifo.write(frame)
        except ValueError:
            # The stream changed format mid-way: flush what we have, start afresh.
            if fifo.samples:
                yield from _drain(fifo)
            fifo = av.AudioFifo()
            fifo.write(frame)
        if fifo.samples >= frame.sample_rate * seconds:
            yield from _drain(fifo)
    if fifo is not None and fifo.samples:
        yield from _drain(fifo)


def _drain(fifo: av.AudioFifo) -> Iterator[av.AudioFrame]:
    """Everything in ``fifo`` as one frame (none when it is empty)."""
    frame = fifo.read()
    if frame is not None:
        yield frame


def _resampled(frames: Iterable[av.AudioFrame], rate: int) -> Iterator[np.ndarray]:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    for frame in frames:
        for out in resampler.resample(frame):
            yield out.to_ndarray().reshape(-1)
    for out in resampler.resample(None):
        yield out.to_ndarray().reshape(-1)


def iter_pcm(
    path: Path, rate: int = SAMPLE_RATE, cap: DurationCap | None = None
) -> Iterator[np.ndarray]:
    """Chunks of 16-bit mono samples at ``rate``, in order, for the whole file.

    With ``cap``, decoding stops (``PayloadTooLarge``) as soon as the samples decoded so
    far pass its bounds: about two seconds past them at most, whatever the header said.
    """
    decoded = 0
    with open_container(path) as container:
        try:
            for chunk in _resampled(_batched(_frames(container)), rate):
                decoded += chunk.size
                if cap is not None:
                    cap.check(decoded / rate)
                yield chunk
        except av.error.FFmpegError as exc:
            raise InvalidAudio(
                f"The audio could not be decoded: {ffmpeg_reason(exc)}.", param="audio"
            ) from exc


def decode_to_file(
    path: Path, out_path: Path, rate: int = SAMPLE_RATE, cap: DurationCap | None = None
) -> int:
    """Decode ``path`` into raw little-endian int16 samples at ``out_path``; return the count."""
    total = 0
    pending: list[bytes] = []
    pending_bytes = 0
    with open(out_path, "wb") as out:
        for chunk in iter_pcm(path, rate, cap):
            data = chunk.astype("<i2", copy=False).tobytes()
            pending.append(data)
            pending_bytes += len(data)
            total += chunk.size
            if pending_bytes >= _FLUSH_BYTES:
                out.write(b"".join(pending))
                pending, pending_bytes = [], 0
        out.write(b"".join(pending))
    return total


class DecodedAudio:
    """A recording decoded once to a temporary raw file and memory-mapped.

    Use as a context manager: the file is removed on exit, whatever happened.
    """

    def __init__(self, raw_path: Path, n_samples: int, rate: int = SAMPLE_RATE):
        self.raw_path = raw_path
        self.rate = rate
        self.n_samples = n_samples
        self.samples: np.ndarray = (
            np.memmap(raw_path, dtype="<i2", mode="r", shape=(n_samples,))
            if n_samples
            else np.zeros(0, dtype="<i2")
        )

    @classmethod
    def from_file(
        cls,
        source: Path,
        tmp_dir: Path,
        rate: int = SAMPLE_RATE,
        cap: DurationCap | None = None,
    ) -> DecodedAudio:
        """Decode ``source`` once; with ``cap``, stop (and remove the file) past its bounds."""
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="pcm-", suffix=".s16", dir=tmp_dir)
        os.close(fd)
        raw = Path(name)
        try:
            n = decode_to_file(source, raw, rate, cap)
        except BaseException:
            raw.unlink(missing_ok=True)
            raise
        return cls(raw, n, rate)

    @property
    def duration(self) -> float:
        return self.n_samples / self.rate

    def slice(self, start_s: float, end_s: float) -> np.ndarray:
        """Samples between two times in seconds: a view, not a copy."""
        a = max(0, round(start_s * self.rate))
        b = min(self.n_samples, round(end_s * self.rate))
        return self.samples[a:b]

    def release(self, start_s: float, end_s: float) -> None:
        """Drop the mapped pages of ``start_s``..``end_s`` from this process.

        A finished window's samples are not read again, yet their pages stay in the
        process's RSS until the map is closed: over an hour that is the whole decoded file
        (~110 MB). The map is read-only and file-backed, so dropping is safe: pages of
        the range that are touched again (a neighbour window sharing an edge page, a
        retry) are simply read back from the page cache or the file.
        """
        mm: mmap.mmap | None = getattr(self.samples, "_mmap", None)
        if mm is None or mm.closed or not hasattr(mmap, "MADV_DONTNEED"):
            return
        itemsize = self.samples.itemsize
        a = max(0, round(start_s * self.rate)) * itemsize
        b = min(self.n_samples, round(end_s * self.rate)) * itemsize
        # madvise wants a page-aligned start; widen to whole pages (dropping a neighbour's
        # edge page only costs it a re-read).
        page = mmap.PAGESIZE
        a -= a % page
        b = min(len(mm), -(-b // page) * page)
        if b > a:
            mm.madvise(mmap.MADV_DONTNEED, a, b - a)

    def close(self) -> None:
        mm = getattr(self.samples, "_mmap", None)
        self.samples = np.zeros(0, dtype="<i2")
        if mm is not None:
            mm.close()
        self.raw_path.unlink(missing_ok=True)

    def __enter__(self) -> DecodedAudio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
