"""Batched Whisper (VAD chunks decoded together) against the sequential path, on real
speech: the same words within the WER tolerance, true timestamps, words when asked."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.config import Settings
from stepaudio.engines import whisper_batched
from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.engines.whisper import Transcript, resolve_device
from stepaudio.testing.longaudio import Placement, build
from tests.helpers import clip, wer

# Word error rate the batched path may add to the sequential one's, against the reference
# (it may as well be lower: the sequential path here glues the sonnet's last line onto JFK).
TOLERANCE = 0.05


@pytest.fixture(scope="module")
def recording() -> tuple[np.ndarray, list[Placement]]:
    """A sonnet, then JFK (67 s, a 1.5 s pause between), with where each clip lies."""
    pcm, placements = build([clip("en/sonnet_1.mp3"), clip("en/jfk.flac")], 60)
    return pcm, placements


@pytest.fixture(scope="module")
def both(embedded: EmbeddedEngine, recording) -> tuple[Transcript, Transcript]:
    pcm, _ = recording
    sequential = embedded.whisper.transcribe(pcm, language="en", beam_size=1, batch_size=0)
    batched = embedded.whisper.transcribe(pcm, language="en", beam_size=1, batch_size=8)
    return sequential, batched


def test_batched_says_what_sequential_says(both, recording) -> None:
    sequential, batched = both
    _, placements = recording
    reference = " ".join(p.source.with_suffix(".txt").read_text() for p in placements)
    assert len(batched.text) > 0.8 * len(sequential.text)
    assert wer([reference], [batched.text]) <= wer([reference], [sequential.text]) + TOLERANCE
    assert wer([reference], [batched.text]) <= 0.2
    assert batched.language == "en"


def test_batched_times_are_the_recordings(both, recording) -> None:
    _, batched = both
    pcm, placements = recording
    duration = pcm.size / SAMPLE_RATE
    starts = [s.start for s in batched.segments]
    assert starts == sorted(starts)
    assert all(0 <= s.start < s.end <= duration + 0.5 for s in batched.segments)
    # Each segment lies over speech (a clip), not in the pauses or shifted by a chunk.
    for segment in batched.segments:
        middle = (segment.start + segment.end) / 2
        assert any(p.start - 1 <= middle <= p.end + 1 for p in placements), segment
    # JFK, a minute in (past the first chunks), is found where it was put.
    (jfk,) = [p for p in placements if p.source.name == "jfk.flac"]
    americans = [s.start for s in batched.segments if "americans" in s.text.lower()]
    assert len(americans) == 1 and abs(americans[0] - jfk.start) < 2


def test_batched_words_are_timed_inside_their_segments(embedded: EmbeddedEngine, recording) -> None:
    pcm, _ = recording
    out = embedded.whisper.transcribe(
        pcm[-20 * SAMPLE_RATE :], language="en", beam_size=1, batch_size=8, word_timestamps=True
    )
    assert out.segments
    for segment in out.segments:
        assert segment.words
        assert all(
            segment.start - 0.5 <= w.start <= w.end <= segment.end + 0.5 for w in segment.words
        )
    words = [w.word.lower().strip(",.") for s in out.segments for w in s.words or []]
    assert "americans" in words and "country" in words


def test_batched_silence_is_nothing(embedded: EmbeddedEngine) -> None:
    rng = np.random.default_rng(0)
    hiss = (rng.standard_normal(20 * SAMPLE_RATE) * 60).astype(np.int16)
    assert embedded.whisper.transcribe(hiss, language="en", batch_size=8).segments == []


def test_options_the_batched_path_cannot_honour_go_sequential() -> None:
    assert whisper_batched.batchable({"beam_size": 5, "word_timestamps": True})
    assert whisper_batched.batchable({"initial_prompt": "x", "temperature": [0.0, 0.2]})
    assert not whisper_batched.batchable({"vad_filter": False})
    assert not whisper_batched.batchable({"clip_timestamps": [0.0, 5.0]})
    assert not whisper_batched.batchable({"no_such_option": 1})


def test_chunks_are_contiguous_short_and_disjoint() -> None:
    regions = [(0.5, 9.0), (9.4, 20.0), (21.0, 29.0), (29.2, 40.0), (60.0, 61.0)]
    out = whisper_batched.chunks(regions, 62.0)
    assert all(e - s <= whisper_batched.CHUNK_S for s, e in out)
    assert all(a[1] <= b[0] for a, b in zip(out, out[1:], strict=False))
    # Every region is inside exactly one chunk, never split by grouping.
    for start, end in regions:
        assert sum(1 for s, e in out if s <= start and end <= e) == 1
    assert out[0][0] == pytest.approx(0.3) and out[-1][1] == pytest.approx(61.2)


def test_device_setting() -> None:
    import ctranslate2

    gpus = ctranslate2.get_cuda_device_count()
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if gpus else "cpu")
    if not gpus:
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(ValueError):
        Settings(_env_file=None, device="tpu")


def test_batch_size_and_device_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPAUDIO_WHISPER_BATCH_SIZE", "4")
    monkeypatch.setenv("STEPAUDIO_DEVICE", "auto")
    s = Settings(_env_file=None)
    assert s.whisper.batch_size == 4 and s.device == "auto"
    monkeypatch.setenv("STEPAUDIO_WHISPER__BATCH_SIZE", "0")
    assert Settings(_env_file=None).whisper.batch_size == 0
    monkeypatch.setenv("STEPAUDIO_WHISPER__BATCH_SIZE", "-1")
    with pytest.raises(ValueError):
        Settings(_env_file=None)


def test_a_segment_ends_where_the_next_begins():
    """A chunk's last segment may claim the silence up to its chunk's end where a repair
    pass found later words: its end (and its words') stop at the next segment's start."""
    from faster_whisper.transcribe import Segment as FwSegment
    from faster_whisper.transcribe import Word as FwWord

    from stepaudio.engines.whisper_batched import _without_overlaps

    def seg(start: float, end: float, text: str, words: list[FwWord] | None = None):
        return FwSegment(0, 0, start, end, text, [], 0.0, 1.0, 0.0, words, 0.0)

    first = seg(
        622.4,
        629.4,
        "succession vine.",
        [FwWord(622.4, 623.0, "succession", 1.0), FwWord(623.0, 629.4, "vine.", 1.0)],
    )
    fixed = _without_overlaps([first, seg(624.4, 631.4, "This were to be new made")])
    assert [(s.start, s.end) for s in fixed] == [(622.4, 624.4), (624.4, 631.4)]
    assert [(w.start, w.end) for w in fixed[0].words] == [(622.4, 623.0), (623.0, 624.4)]
    # Segments that do not overlap are left as they are.
    apart = [seg(0.0, 1.0, "a"), seg(1.0, 2.0, "b")]
    assert _without_overlaps(apart) == apart


def test_a_chunks_text_is_cut_into_sentences_timed_by_their_words():
    """Without timestamp tokens a chunk is one segment: it is cut into sentences at words
    ending one (not at "Mr."), each timed by its own words."""
    from faster_whisper.transcribe import Segment as FwSegment
    from faster_whisper.transcribe import Word as FwWord

    said = [(" Alpha", 10.5, 11.0), (" beta.", 11.0, 13.5), (" And", 14.5, 15.0)]
    said += [(" Mr.", 15.0, 15.5), (" Smith", 15.5, 16.0), (" spoke.", 16.0, 23.5)]
    said += [(" End?", 25.0, 26.0)]
    words = [FwWord(s, e, w, 0.9) for w, s, e in said]
    text = "".join(w for w, _, _ in said)
    chunk = FwSegment(0, 0, 10.0, 30.0, text, [1, 2, 3], 0.0, -0.2, 1.2, words, 0.0)
    out = whisper_batched.sentences(chunk, [(10.4, 26.1)])
    assert [s.text.strip() for s in out] == ["Alpha beta.", "And Mr. Smith spoke.", "End?"]
    assert [(s.start, s.end) for s in out] == [(10.5, 13.5), (14.5, 23.5), (25.0, 26.0)]
    assert [len(s.words) for s in out] == [2, 4, 1]
    assert [s.tokens for s in out] == [[1, 2, 3], [], []]
    # No words (no text aligned): the chunk's speech, not its padding.
    (whole,) = whisper_batched.sentences(replace(chunk, words=None), [(10.4, 26.1)])
    assert (whole.start, whole.end) == (10.4, 26.1)
