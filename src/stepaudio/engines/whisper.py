"""Whisper through faster-whisper, loaded once per process and shared by all requests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stepaudio.engines import whisper_batched
from stepaudio.engines.base import LANES, Segment, Word
from stepaudio.engines.local_models import resolve_whisper
from stepaudio.errors import InvalidParameter, StepAudioError
from stepaudio.text import join_texts


@dataclass
class Transcript:
    segments: list[Segment]
    language: str | None
    """The language of most of the speech (each segment says its own)."""
    heard: list[whisper_batched.Heard] = field(default_factory=list)
    """What each speech chunk sounded like, where chunks were detected one by one."""

    @property
    def text(self) -> str:
        return join_texts(s.text for s in self.segments)

    @property
    def spoken(self) -> dict[str, float]:
        """Seconds of speech in each language."""
        return spoken(self.segments)


def _hallucinated(segment) -> bool:
    """Whisper's classic output on silence ("You", "Thank you."): its own no-speech
    detector is confident and the text is not. faster-whisper keeps such a segment unless
    the log-probability is below -1; requiring both signals keeps real, quiet speech."""
    return segment.no_speech_prob > 0.7 and segment.avg_logprob < -0.7


def _segment(s, language: str | None) -> Segment:
    """Our ``Segment`` from faster-whisper's (its words only when they were asked for)."""
    words = None
    if s.words is not None:
        words = [
            Word(w.word.strip(), round(w.start, 3), round(w.end, 3), w.probability)
            for w in s.words
            if w.word.strip()
        ]
    return Segment(
        round(s.start, 3),
        round(s.end, 3),
        s.text.strip(),
        seek=s.seek,
        tokens=list(s.tokens),
        temperature=s.temperature,
        avg_logprob=s.avg_logprob,
        compression_ratio=s.compression_ratio,
        no_speech_prob=s.no_speech_prob,
        words=words,
        language=language,
    )


def _kept(spoken: list[whisper_batched.Spoken]) -> list[Segment]:
    """Our segments of faster-whisper's, less the hallucinated and the empty."""
    out = [_segment(s, language) for s, language in spoken if not _hallucinated(s)]
    return [s for s in out if s.text]


def spoken(segments: list[Segment]) -> dict[str, float]:
    """Seconds of speech in each language, by the segments' own."""
    out: dict[str, float] = {}
    for s in segments:
        if s.language:
            out[s.language] = round(out.get(s.language, 0.0) + s.end - s.start, 3)
    return out


def _main_language(segments: list[Segment], default: str | None) -> str | None:
    """The language most of the speech is in."""
    by_language = spoken(segments)
    return max(by_language, key=by_language.__getitem__) if by_language else default


_SILENT_PEAK = 33
"""Peak below -60 dBFS (int16): no microphone recording of speech is this quiet."""


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda`` for a ``device`` setting: ``auto`` is CUDA where CTranslate2 sees
    a GPU; ``cuda`` without one is refused at start-up, not at the first request."""
    if device == "cpu":
        return "cpu"
    import ctranslate2  # type: ignore[import-untyped]

    gpus = ctranslate2.get_cuda_device_count()
    if device == "auto":
        return "cuda" if gpus else "cpu"
    if device == "cuda" and not gpus:
        raise ValueError(
            "device is 'cuda' but CTranslate2 sees no CUDA device (no GPU, or a CPU-only "
            "build); set STEPAUDIO_DEVICE=cpu or auto."
        )
    if device != "cuda":
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    return device


class WhisperTranscriber:
    """Thread-safe lazy holder of the ``WhisperModel`` (one per compute type in use).

    ``batch_size`` over 1: speech chunks of a call are decoded that many at once
    (whisper_batched.py); 0 or 1: faster-whisper's sequential ``transcribe``.
    ``device``: ``cpu`` or ``cuda`` (``resolve_device`` turns the setting into one).
    ``chinese_compute_type``: the compute type for Mandarin (given or detected), where
    int8 costs Whisper base 4.5 points of CER (docs/benchmarks.md); empty: the same."""

    def __init__(
        self,
        model: str,
        models_dir: Path,
        *,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        workers: int = 1,
        beam_size: int = 5,
        batch_size: int = 0,
        device: str = "cpu",
        chinese_compute_type: str = "",
    ):
        self._name = model
        self._models_dir = models_dir
        self._compute_type = compute_type
        self._chinese_compute_type = chinese_compute_type or compute_type
        self._cpu_threads = cpu_threads
        self._workers = workers
        self.beam_size = beam_size
        self.batch_size = batch_size
        self.device = device
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    def model(self, compute_type: str | None = None):
        """The model in ``compute_type`` (default: the transcriber's), loaded on first use."""
        compute_type = compute_type or self._compute_type
        with self._lock:
            if compute_type not in self._models:
                from stepaudio.engines.whisper_draft import DraftableWhisper

                self._models[compute_type] = DraftableWhisper(
                    resolve_whisper(self._name, self._models_dir),
                    device=self.device,
                    compute_type=compute_type,
                    cpu_threads=self._cpu_threads,
                    # A replica per lane and worker: a short request's window runs
                    # beside a long request's and a background task's (the pipeline's
                    # lanes, sync_first) instead of queueing behind their every call.
                    num_workers=LANES * self._workers,
                )
            return self._models[compute_type]

    def _model_for(self, audio: np.ndarray, language: str | None) -> tuple[Any, str | None]:
        """The model for this audio, and its language: the one asked for, or where it had
        to be detected first to pick the model, the first 30 s's."""
        model = self.model()
        if self._chinese_compute_type == self._compute_type:
            return model, language
        if language is None:
            # The same detection transcribe would run (first 30 s), done here to pick the
            # model; the sequential path is then told it, so it is not detected twice.
            language = model.detect_language(audio)[0]
        if language == "zh":
            model = self.model(self._chinese_compute_type)
        return model, language

    def transcribe(
        self,
        pcm: np.ndarray,
        *,
        language: str | None = None,
        task: str = "transcribe",
        draft: bool = False,
        on_segments: Callable[[list[Segment]], None] | None = None,
        **options: Any,
    ) -> Transcript:
        """Blocking: run in a worker thread. Times are relative to ``pcm``'s start.

        ``options`` go to faster-whisper's ``transcribe`` as they are (``temperature``,
        ``initial_prompt``, ``word_timestamps``, ``vad_filter``, ...); ``beam_size``
        defaults to this transcriber's, ``batch_size`` (0 or 1: sequential) too. Options
        the batched path does not take (or ``vad_filter=False``) mean sequential.
        ``draft``: faster and a little less exact (whisper_draft.py), for live partials.
        ``on_segments``: called (in this thread) with segments as soon as they are final,
        in order, where the batched path decodes the speech chunk by chunk; the returned
        transcript holds them all."""
        if pcm.size == 0 or (pcm.max() < _SILENT_PEAK and pcm.min() > -_SILENT_PEAK):
            # Digital silence: Whisper's no-speech detector is not sure of it on every CPU
            # (0.68 here, 0.7+ elsewhere) and the words it then invents ("You") are not
            # reliably caught; nothing this quiet is speech.
            return Transcript([], language)
        audio = np.asarray(pcm, dtype=np.float32) / 32768.0
        from stepaudio.engines.whisper_draft import drafting  # faster-whisper, when used

        try:
            with drafting(draft):
                return self._transcribe(audio, language, task, options, on_segments)
        except ValueError as exc:
            # faster-whisper raises ValueError for an unknown language code.
            raise InvalidParameter(str(exc), param="language") from exc
        except RuntimeError as exc:
            raise StepAudioError(f"Whisper failed: {exc}", code="whisper_error") from exc

    def _transcribe(
        self,
        audio: np.ndarray,
        language: str | None,
        task: str,
        options: dict[str, Any],
        on_segments: Callable[[list[Segment]], None] | None,
    ) -> Transcript:
        batch_size = options.pop("batch_size", self.batch_size)
        model, likely = self._model_for(audio, language)
        from stepaudio.engines.whisper_draft import DRAFT_BEAM, drafting, is_drafting

        draft = is_drafting() and likely != "zh"
        options.setdefault("beam_size", DRAFT_BEAM if draft else self.beam_size)

        with drafting(False) if likely == "zh" else contextlib.nullcontext():
            # Drafts cost Mandarin about 4 CER points (whisper_draft.py): never for it.
            return self._decode(
                model, audio, language, likely, task, batch_size, options, on_segments
            )

    def _decode(
        self,
        model: Any,
        audio: np.ndarray,
        language: str | None,
        likely: str | None,
        task: str,
        batch_size: int,
        options: dict[str, Any],
        on_segments: Callable[[list[Segment]], None] | None,
    ) -> Transcript:
        """``language``: the one asked for (None: each speech chunk's own, batched);
        ``likely``: that, or the one detected to pick the model."""
        heard: list[whisper_batched.Heard] = []
        if batch_size > 1 and whisper_batched.batchable(options):
            spoken, heard = whisper_batched.transcribe(
                model,
                audio,
                batch_size=batch_size,
                language=language,
                task=task,
                options=options,
                on_chunks=on_segments and (lambda found: on_segments(_kept(found))),
                likely=likely,
            )
        else:
            segments, info = model.transcribe(audio, language=likely, task=task, **options)
            spoken = [(s, info.language) for s in segments]
        out = _kept(spoken)
        return Transcript(out, _main_language(out, likely), heard)
