"""Batched Whisper: the speech in a window (Silero VAD, bundled with faster-whisper) cut
into chunks of at most 30 s, several chunks decoded at once through faster-whisper's
``BatchedInferencePipeline``.

Chunks are contiguous stretches of the recording (pauses inside them kept), not speech
glued together as faster-whisper's own VAD path does: glued speech from two speakers or
two texts makes Whisper base stop after the first, and times are the recording's own.

Chunks are decoded without Whisper's timestamp tokens. With them, Whisper base ends a
chunk's text at a pause (end-of-text after one utterance) in about half the chunks, and
decoding the rests again cost a third of the time; without them it mostly writes the
whole 30 s, and the words are better (docs/benchmarks.md, "Batched Whisper"). A chunk's text is then
cut into sentences, each timed by its words: faster-whisper's alignment of the text on the
audio (cross-attention), asked for always and dropped where the caller did not want words.
(Sentences placed over the chunk's speech in proportion to their length, the cheaper way,
missed by several seconds where speakers' rates differ.)

Two repairs follow a batched pass, as it has none of the sequential path's safety nets:

- a chunk whose text stops with speech to come (its last aligned word ends ≥ 1.5 s of
  speech before the chunk does: Whisper base writes end-of-text after an utterance where
  a new voice or text follows a pause, timestamps or not) has its rest decoded in
  another batched pass;
- a chunk whose text loops (gzip ratio over faster-whisper's 2.4) is decoded again
  sequentially, with its temperature fallback, Whisper's timestamps and all.

Each chunk's language is read off its own encoding (one decoder step, ``Heard``): where
none was asked for, each chunk is transcribed in the language it is spoken in
(faster-whisper's ``multilingual``), so an English talk with a German half comes back in
English and German, not translated; where one was asked for, what each chunk sounds like
is still reported, for a warning where the two differ.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE

CHUNK_S = 30.0
"""Whisper's own input length: a longer chunk would be cut."""
_PAD_S = 0.2
_LOOP_RATIO = 2.4
_CUT_SHORT_S = 1.5
"""Speech left after a chunk's last aligned word that counts as its text stopping early."""
_TAIL_ROUNDS = 2
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")
_TITLE = re.compile(r"\b(Mr|Mrs|Ms|Dr|St|Mt|Jr|Sr|Prof|Rev|Gen|Col|Capt|Lt|vs|No)\.$")
"""A full stop after these ends no sentence ("Mr. John Dashwood")."""


@dataclass(frozen=True)
class Heard:
    """The language a stretch of the recording sounds like (Whisper's detection)."""

    start: float
    end: float
    language: str
    probability: float


Spoken = tuple[Any, str | None]
"""A faster-whisper segment and the language it was transcribed in."""


def _pipeline(model: Any) -> Any:
    """faster-whisper's batched pipeline, also noting each chunk's detected language."""
    from faster_whisper import BatchedInferencePipeline

    class Detecting(BatchedInferencePipeline):
        def __init__(self, model: Any):
            super().__init__(model)
            self.detected: list[tuple[str, float]] = []

        def generate_segment_batched(self, features, tokenizer, options):
            encoder_output, output = super().generate_segment_batched(features, tokenizer, options)
            if self.model.model.is_multilingual:
                # The decoder's first step on an encoding already made: no second encode.
                for ranked in self.model.model.detect_language(encoder_output):
                    token, probability = ranked[0]
                    self.detected.append((token.strip("<|>"), probability))
            return encoder_output, output

    return Detecting(model)


def _accepted() -> frozenset[str]:
    from faster_whisper import BatchedInferencePipeline

    return frozenset(inspect.signature(BatchedInferencePipeline.transcribe).parameters)


def batchable(options: dict[str, Any]) -> bool:
    """Whether ``options`` mean the same on the batched path. Without the VAD (asked for
    explicitly) or with clips of the caller's own, the sequential path is the one meant."""
    if options.get("vad_filter") is False or "clip_timestamps" in options:
        return False
    return set(options) <= _accepted()


def speech_regions(audio: np.ndarray) -> list[tuple[float, float]]:
    """Where the speech is, in seconds, each region shorter than a chunk."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    vad = VadOptions(min_silence_duration_ms=160, max_speech_duration_s=CHUNK_S - 2 * _PAD_S)
    return [
        (t["start"] / SAMPLE_RATE, t["end"] / SAMPLE_RATE)
        for t in get_speech_timestamps(audio, vad)
    ]


def chunks(regions: list[tuple[float, float]], duration: float) -> list[tuple[float, float]]:
    """Consecutive speech regions grouped into stretches of at most ``CHUNK_S``, padded a
    little (VAD ends tight on the last phoneme) but never into the next chunk, so each
    segment belongs to exactly one chunk."""
    out: list[list[float]] = []
    for start, end in regions:
        if out and end + _PAD_S - out[-1][0] <= CHUNK_S:
            out[-1][1] = end
        else:
            out.append([start, end])
    padded = []
    for i, (start, end) in enumerate(out):
        before = out[i - 1][1] if i else 0.0
        after = out[i + 1][0] if i + 1 < len(out) else duration
        padded.append(
            (max(start - _PAD_S, (before + start) / 2), min(end + _PAD_S, (end + after) / 2))
        )
    return padded


def transcribe(
    model: Any,
    audio: np.ndarray,
    *,
    batch_size: int,
    language: str | None,
    task: str,
    options: dict[str, Any],
    on_chunks: Callable[[list[Spoken]], None] | None = None,
    likely: str | None = None,
) -> tuple[list[Spoken], list[Heard]]:
    """faster-whisper segments of ``audio`` (times in its seconds), each with the language
    it was transcribed in, and what each chunk sounded like.

    ``language``: the one asked for, or None: each chunk's own. ``likely``: the language
    already detected on the first 30 s, if it was (faster-whisper otherwise detects it
    again on every call, an encoder pass, though each chunk then gets its own).

    ``on_chunks``: called with each run of chunks' segments as soon as they are final, in
    audio order; the first chunk is then decoded on its own and the batches grow from it
    (1, 2, 4, … ``batch_size`` chunks), so the first text comes after one chunk's work,
    not a whole batch's (4 or 8 chunks cost about the same here: docs/benchmarks.md)."""
    duration = audio.size / SAMPLE_RATE
    regions = speech_regions(audio)
    todo = chunks(regions, duration)
    if not todo:
        return [], []
    options = {k: v for k, v in options.items() if k != "without_timestamps"}
    # Words time the sentences even when the caller did not ask for them (dropped then).
    words = options.pop("word_timestamps", False)
    found: list[Spoken] = []
    heard: list[Heard] = []
    for group in _growing(todo, batch_size) if on_chunks else [todo]:
        spoken, detected = _decode(
            model, audio, group, regions, language, likely, task, batch_size, options, words
        )
        spoken.sort(key=lambda p: (p[0].start, p[0].end))
        found += spoken
        heard += detected
        if on_chunks is not None:
            on_chunks(spoken)
    kept = _without_overlaps([s for s, _ in found])
    return [(s, spoken) for s, (_, spoken) in zip(kept, found, strict=True)], heard


def _growing(todo: list[tuple[float, float]], batch_size: int) -> list[list[tuple[float, float]]]:
    """``todo`` in groups of 1, 2, 4, … up to ``batch_size`` chunks."""
    groups, size = [], 1
    while todo:
        groups.append(todo[:size])
        todo, size = todo[size:], min(2 * size, max(batch_size, 1))
    return groups


def _decode(
    model: Any,
    audio: np.ndarray,
    todo: list[tuple[float, float]],
    regions: list[tuple[float, float]],
    language: str | None,
    likely: str | None,
    task: str,
    batch_size: int,
    options: dict[str, Any],
    words: bool,
) -> tuple[list[Spoken], list[Heard]]:
    """The chunks ``todo`` decoded together, then repaired (their rests, their loops)."""
    found: list[Spoken] = []
    heard: list[Heard] = []
    for round_ in range(_TAIL_ROUNDS + 1):
        if not todo:
            break
        pipeline = _pipeline(model)
        segments, info = pipeline.transcribe(
            audio,
            # With ``multilingual`` each chunk's detected language replaces this one.
            language=language or likely,
            multilingual=language is None,
            task=task,
            batch_size=batch_size,
            clip_timestamps=[{"start": s, "end": e} for s, e in todo],
            without_timestamps=True,
            word_timestamps=True,
            **options,
        )
        by_chunk = _by_chunk(todo, list(segments))
        # Batches are run in the clips' order, one detection per chunk.
        detected = dict(zip(todo, pipeline.detected, strict=False))
        if round_ == 0:
            heard = [Heard(c[0], c[1], *detected[c]) for c in todo if c in detected]
        for chunk, mine in list(by_chunk.items()):
            spoken = language or detected.get(chunk, (info.language, 1.0))[0]
            if any(_loops(s) for s in mine):
                found += [
                    (s, spoken)
                    for s in _sequential(
                        model, audio, chunk, spoken, task, {**options, "word_timestamps": words}
                    )
                ]
                del by_chunk[chunk]
            else:
                found += [
                    (t if words else replace(t, words=None), spoken)
                    for s in mine
                    for t in sentences(s, regions)
                ]
        todo = _cut_short(by_chunk, regions) if round_ < _TAIL_ROUNDS else []
    return found, heard


def sentences(segment: Any, regions: list[tuple[float, float]]) -> list[Any]:
    """A chunk's segment cut into its sentences, each timed by its aligned words (or, with
    none, over the chunk's speech)."""
    if segment.words:
        return _by_words(segment)
    speech = [(s, e) for s, e in regions if min(e, segment.end) > max(s, segment.start)] or [
        (segment.start, segment.end)
    ]
    start, end = max(speech[0][0], segment.start), min(speech[-1][1], segment.end)
    return [replace(segment, start=start, end=end)]


def _by_words(segment: Any) -> list[Any]:
    """Sentences by the segment's aligned words: each ends with a word ending one."""
    groups: list[list[Any]] = [[]]
    for word in segment.words:
        groups[-1].append(word)
        text = word.word.strip()
        if _SENTENCE_END.search(text + " ") and not _TITLE.search(text):
            groups.append([])
    groups = [g for g in groups if g]
    return [
        replace(
            segment,
            start=g[0].start,
            end=g[-1].end,
            text="".join(w.word for w in g),
            words=g,
            tokens=segment.tokens if i == 0 else [],
        )
        for i, g in enumerate(groups)
    ]


def _without_overlaps(segments: list[Any]) -> list[Any]:
    """Segments (sorted by start) whose ends stop at the next one's start. A sequentially
    decoded chunk's last segment may claim the silence after it, up to the chunk's end:
    the times would say two texts were spoken at once."""
    out = []
    for segment, after in zip(segments, [*segments[1:], None], strict=True):
        if after is not None and segment.end > after.start:
            end = max(segment.start, after.start)
            words = segment.words and [
                replace(w, start=min(w.start, end), end=min(w.end, end)) for w in segment.words
            ]
            segment = replace(segment, end=end, words=words)
        out.append(segment)
    return out


def _by_chunk(
    todo: list[tuple[float, float]], got: list[Any]
) -> dict[tuple[float, float], list[Any]]:
    """Each chunk's segments: a chunk's text starts at or after its own start."""
    out: dict[tuple[float, float], list[Any]] = {c: [] for c in todo}
    for segment in got:
        home = next((c for c in reversed(todo) if c[0] <= segment.start + 0.01), todo[0])
        out[home].append(segment)
    return out


def _speech_within(regions: list[tuple[float, float]], start: float, end: float) -> float:
    return sum(max(0.0, min(e, end) - max(s, start)) for s, e in regions)


def _cut_short(
    by_chunk: dict[tuple[float, float], list[Any]], regions: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The rest of each chunk whose text stopped with speech still to come: Whisper wrote
    end-of-text after an utterance (a new voice or text after a pause sets it off, even
    without timestamps). Where its last word ends, by the alignment, says where."""
    rest = []
    for (_start, end), mine in by_chunk.items():
        said = [w.end for s in mine for w in s.words or []]
        if not said:
            continue  # nothing at all: the same chunk again would say the same
        if _speech_within(regions, max(said), end) >= _CUT_SHORT_S:
            rest.append((max(said), end))
    return rest


def _loops(segment: Any) -> bool:
    return segment.compression_ratio > _LOOP_RATIO


def _sequential(
    model: Any,
    audio: np.ndarray,
    chunk: tuple[float, float],
    language: str | None,
    task: str,
    options: dict[str, Any],
) -> list[Any]:
    """One chunk through the sequential path (its temperature fallback catches loops),
    over the same stretch of the recording, so times stay the recording's."""
    segments, _ = model.transcribe(
        audio, language=language, task=task, clip_timestamps=list(chunk), **options
    )
    return list(segments)
