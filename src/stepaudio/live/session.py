"""One live stream: its audio cut into turns, each transcribed while spoken.

``append`` takes 16 kHz samples; with a ``StreamingVad`` the session finds the turns
itself (speech started → stopped), without one the caller ends a turn with ``commit``.
While a turn is spoken, it is transcribed again every ``partial_interval_s`` of new audio
and the words two hypotheses agree on go out as ``Delta`` events; when it ends, its whole
audio is transcribed once more and the rest goes out, then ``Completed``. The deltas of a
turn joined are its completed transcript.

One worker per session runs the transcriptions in order, one at a time: partials of a turn
wait for nothing (a newer request replaces one not yet started), finals keep their order.
The ``transcribe`` function is the caller's: the realtime face runs it through the
service's lifecycle, like any request.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.errors import BadRequest, StepAudioError
from stepaudio.live.turns import agreed, continuation
from stepaudio.live.vad import StreamingVad


@dataclass(frozen=True)
class SpeechStarted:
    item_id: str
    audio_start_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    item_id: str
    audio_end_ms: int


@dataclass(frozen=True)
class Committed:
    item_id: str
    previous_item_id: str | None


@dataclass(frozen=True)
class Cleared:
    pass


@dataclass(frozen=True)
class Delta:
    item_id: str
    delta: str


@dataclass(frozen=True)
class Word:
    """A word of a turn and its times, in seconds from the turn's start."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class Heard:
    """What a transcription of a turn gave: its text, and its words' times if asked."""

    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Completed:
    item_id: str
    transcript: str
    audio_seconds: float
    audio: np.ndarray | None = field(default=None, repr=False, compare=False)
    """The turn's samples, for a face that does more with the turn (translation)."""
    words: tuple[Word, ...] = ()
    """The final hypothesis's words, timed from the turn's start (``start_ms``)."""
    start_ms: int = 0
    """Where the turn's audio begins in the stream."""


@dataclass(frozen=True)
class Failed:
    item_id: str
    error: StepAudioError


LiveEvent = SpeechStarted | SpeechStopped | Committed | Cleared | Delta | Completed | Failed
Transcribe = Callable[[np.ndarray, bool], Awaitable[Heard | None]]
"""``(samples, final) -> text``: a turn's audio so far (``final`` False) or whole. A
partial may be declined (None): the service is busy with others' final texts."""
Emit = Callable[[LiveEvent], Awaitable[None]]

CONTEXT_CHARS = 200
"""How much of the session's text so far is kept as the next turns' context."""

MIN_COMMIT_MS = 100
"""OpenAI refuses to commit less audio than this."""


class EmptyCommit(BadRequest):
    default_code = "input_audio_buffer_commit_empty"


def new_item_id() -> str:
    return "item_" + secrets.token_hex(10)


@dataclass
class _Turn:
    item_id: str
    chunks: list[np.ndarray] = field(default_factory=list)
    samples: int = 0
    shown: str = ""
    hypothesis: str = ""
    hypothesis_words: tuple[Word, ...] = ()
    start_ms: int = 0
    heard_at: int = 0
    """Samples the last partial request covered."""
    covered: int = 0
    """Samples ``hypothesis`` was made from."""
    speech_end: int | None = None
    """Samples up to the pause the speech is in (None while it is spoken): a hypothesis
    covering them is already the final text, if the turn ends in this pause."""
    final: bool = False

    def add(self, samples: np.ndarray) -> None:
        self.chunks.append(samples)
        self.samples += len(samples)

    def audio(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)


class LiveSession:
    def __init__(
        self,
        transcribe: Transcribe,
        emit: Emit,
        *,
        vad: StreamingVad | None,
        partial_interval_s: float = 0.5,
        max_turn_s: float = 30.0,
    ):
        self._transcribe = transcribe
        self._emit = emit
        self.vad = vad
        self.partial_samples = int(partial_interval_s * SAMPLE_RATE)
        self.max_turn_samples = int(max_turn_s * SAMPLE_RATE)
        self._turn: _Turn | None = None
        """The turn being spoken (VAD) or the uncommitted buffer (no VAD)."""
        self._padding = np.zeros(0, np.int16)
        self._received = 0
        self._previous_item: str | None = None
        self.context = ""
        """The end of the session's final texts: Whisper hears a short turn ("ask not")
        far better with what was said before it as its prompt."""
        self._jobs: asyncio.Queue[_Turn | asyncio.Future[None]] = asyncio.Queue()
        self._partial: _Turn | None = None
        self._urgent = False
        """The pending partial is a pause's: likely the final text, asked for as one."""
        self._wake = asyncio.Event()
        self._worker = asyncio.create_task(self._work())

    @property
    def received_seconds(self) -> float:
        return self._received / SAMPLE_RATE

    async def append(self, samples: np.ndarray) -> None:
        if self.vad is None:
            if self._turn is None:
                start_ms = self._received * 1000 // SAMPLE_RATE
                self._turn = _Turn(new_item_id(), start_ms=start_ms)
            self._turn.add(samples)
            self._received += len(samples)
            return
        # The VAD speaks of positions in the stream: split the chunk where it changes.
        offset = 0
        for boundary in self.vad.feed(samples):
            cut = max(offset, min(len(samples), self._index(boundary.ms) - self._received))
            await self._route(samples[offset:cut])
            offset = cut
            if boundary.kind == "start":
                await self._start(boundary.ms)
            elif boundary.kind == "stop":
                await self._stop(boundary.ms)
            elif self._turn is not None and boundary.kind == "pause":
                self._pause(self._turn)
            elif self._turn is not None:
                self._resume(self._turn)
        await self._route(samples[offset:])

    async def commit(self) -> None:
        """End the current turn now (the client's ``commit``)."""
        turn = self._turn
        if turn is None or turn.samples < SAMPLE_RATE * MIN_COMMIT_MS // 1000:
            ms = (turn.samples if turn else 0) * 1000 / SAMPLE_RATE
            raise EmptyCommit(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {ms:.2f}ms of audio."
            )
        await self._finish(turn)

    async def clear(self) -> None:
        """Drop the audio not yet committed."""
        self._turn = None
        if self.vad is not None:
            self.vad.speaking = False
        await self._emit(Cleared())

    async def close(self) -> None:
        """Stop: transcriptions in flight are cancelled, nothing more is sent."""
        self._worker.cancel()
        await asyncio.gather(self._worker, return_exceptions=True)

    async def drain(self) -> None:
        """Wait until every ended turn has its final transcript."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._jobs.put(done)
        self._wake.set()
        await done

    # -- turns ------------------------------------------------------------------------

    def _index(self, ms: int) -> int:
        return ms * SAMPLE_RATE // 1000

    async def _route(self, samples: np.ndarray) -> None:
        if not len(samples):
            return
        self._received += len(samples)
        turn = self._turn
        if turn is None:
            # Kept for the next turn's prefix padding.
            # The VAD finds a start a frame late: keep a little more than the padding.
            keep = self._index(self.vad.config.prefix_padding_ms + 100) if self.vad else 0
            self._padding = np.concatenate([self._padding, samples])[-keep:]
            return
        turn.add(samples)
        if turn.samples >= self.max_turn_samples:
            # Past one Whisper window: the turn ends here and speech goes on in a new one.
            await self._finish(turn, stopped_ms=self._received * 1000 // SAMPLE_RATE)
            await self._start(self._received * 1000 // SAMPLE_RATE, padded=False)
        elif turn.samples - turn.heard_at >= self.partial_samples:
            turn.heard_at = turn.samples
            self._partial, self._urgent = turn, False
            self._wake.set()

    async def _start(self, ms: int, *, padded: bool = True) -> None:
        turn = _Turn(new_item_id())
        if padded and len(self._padding):
            # The padding before the start the VAD found, as OpenAI's audio_start_ms says.
            wanted = self._received - self._index(ms)
            turn.add(self._padding[-wanted:] if wanted > 0 else self._padding[:0])
        turn.start_ms = (self._received - turn.samples) * 1000 // SAMPLE_RATE
        self._padding = np.zeros(0, np.int16)
        self._turn = turn
        await self._emit(SpeechStarted(turn.item_id, ms))

    def _pause(self, turn: _Turn) -> None:
        # The turn may be over: its text so far is asked for now, so that if the silence
        # lasts, the final text is (nearly) ready when the stop is declared.
        turn.speech_end = turn.samples
        turn.heard_at = turn.samples
        self._partial, self._urgent = turn, True
        self._wake.set()

    def _resume(self, turn: _Turn) -> None:
        turn.speech_end = None

    async def _stop(self, ms: int) -> None:
        if self._turn is not None:
            await self._finish(self._turn, stopped_ms=ms)

    async def _finish(self, turn: _Turn, *, stopped_ms: int | None = None) -> None:
        self._turn = None
        if stopped_ms is not None:
            await self._emit(SpeechStopped(turn.item_id, stopped_ms))
        await self._emit(Committed(turn.item_id, self._previous_item))
        self._previous_item = turn.item_id
        turn.final = True
        if self._partial is turn:
            self._partial = None
        await self._jobs.put(turn)
        self._wake.set()

    # -- the worker -------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            if self._jobs.empty() and self._partial is None:
                self._wake.clear()
                await self._wake.wait()
            if not self._jobs.empty():
                job = self._jobs.get_nowait()
                if isinstance(job, asyncio.Future):
                    job.set_result(None)
                else:
                    await self._final(job)
            elif self._partial is not None:
                turn, self._partial = self._partial, None
                await self._partial_of(turn, self._urgent)

    async def _partial_of(self, turn: _Turn, urgent: bool) -> None:
        audio = turn.audio()
        try:
            # A pause's text is asked for as a final one: it usually becomes the final.
            heard = await self._transcribe(audio, urgent)
        except StepAudioError:
            return  # the final transcription says what went wrong, if it still does
        if heard is None:
            return
        text = heard.text.strip()
        # Shown: what two hypotheses agree on. (Showing the first one's words at once is
        # faster, but Whisper's first guess at a second of speech is too often wrong, and
        # shown words stand.)
        stable = agreed(turn.hypothesis, text) if turn.hypothesis else ""
        turn.hypothesis, turn.covered = text, len(audio)
        turn.hypothesis_words = heard.words
        if turn.final:
            return
        if len(stable) > len(turn.shown) and stable.startswith(turn.shown):
            delta, turn.shown = stable[len(turn.shown) :], stable
            await self._emit(Delta(turn.item_id, delta))

    async def _final(self, turn: _Turn) -> None:
        audio = turn.audio()
        spoken = turn.speech_end is not None and turn.covered >= turn.speech_end
        try:
            # Only silence after what the last hypothesis heard: it is the final text.
            if spoken:
                heard: Heard | None = Heard(turn.hypothesis, turn.hypothesis_words)
            else:
                heard = await self._transcribe(audio, True)
        except StepAudioError as exc:
            await self._emit(Failed(turn.item_id, exc))
            return
        heard = heard or Heard("")
        text = heard.text.strip()
        rest = continuation(turn.shown, text)
        if rest:
            await self._emit(Delta(turn.item_id, rest))
        transcript = turn.shown + rest
        if transcript:
            self.context = f"{self.context} {transcript}".strip()[-CONTEXT_CHARS:]
        seconds = len(audio) / SAMPLE_RATE
        await self._emit(
            Completed(turn.item_id, transcript, seconds, audio, heard.words, turn.start_ms)
        )
