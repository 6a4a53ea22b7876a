"""Draft decoding (live partials): the encoder reads the speech and a little padding."""

from __future__ import annotations

import numpy as np

from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.engines.whisper_draft import MARGIN_FRAMES, MIN_FRAMES, drafting, trimmed
from stepaudio.testing.longaudio import load_pcm
from tests.helpers import clip, wer


def features(spoken: int, total: int = 3000, batch: int | None = None) -> np.ndarray:
    shape = (80, total) if batch is None else (batch, 80, total)
    out = np.zeros(shape, np.float32)
    out[..., :spoken] = np.random.default_rng(0).normal(size=out[..., :spoken].shape)
    return out


def test_a_short_turn_keeps_the_minimum() -> None:
    assert trimmed(features(200)).shape == (80, MIN_FRAMES)


def test_a_longer_turn_keeps_its_speech_and_the_margin() -> None:
    assert trimmed(features(1500)).shape == (80, 1500 + MARGIN_FRAMES)


def test_speech_near_the_end_is_never_cut() -> None:
    assert trimmed(features(2900)).shape == (80, 3000)


def test_a_quiet_frame_inside_the_speech_does_not_end_it() -> None:
    f = features(1600)
    f[:, 100:900] = 0  # a pause: only trailing padding counts
    assert trimmed(f).shape == (80, 1600 + MARGIN_FRAMES)


def test_a_batch_keeps_its_longest_member() -> None:
    f = features(1800, batch=2)
    f[1, :, 400:] = 0
    assert trimmed(f).shape == (2, 80, 1800 + MARGIN_FRAMES)


def test_all_padding_keeps_the_minimum() -> None:
    assert trimmed(np.zeros((80, 3000), np.float32)).shape == (80, MIN_FRAMES)


def test_draft_encodes_less_and_still_hears_the_words(embedded: EmbeddedEngine) -> None:
    whisper = embedded.whisper
    model = whisper.model()
    pcm = load_pcm(clip("en/jfk.flac"))[: 16000 * 6]
    padded = np.zeros((80, 3000), np.float32)
    mel = model.feature_extractor(pcm.astype(np.float32) / 32768)
    padded[:, : mel.shape[1]] = mel
    assert model.encode(padded).shape[1] == 1500  # 30 s, as Whisper always reads
    with drafting():
        assert model.encode(padded).shape[1] == MIN_FRAMES // 2
    draft = whisper.transcribe(pcm, language="en", draft=True).text
    full = whisper.transcribe(pcm, language="en").text
    assert wer([full], [draft]) <= 0.1, (full, draft)
    assert wer(["and so my fellow americans ask not what you"], [draft]) <= 0.2, draft


def test_mandarin_is_never_drafted(embedded: EmbeddedEngine, monkeypatch) -> None:
    """Drafts cost Mandarin about 4 CER points: its hypotheses read all 30 s."""
    from stepaudio.engines import whisper_draft

    seen: list[int] = []
    encode = whisper_draft.DraftableWhisper.encode

    def spy(self, features):  # type: ignore[no-untyped-def]
        out = encode(self, features)
        seen.append(int(out.shape[1]))
        return out

    monkeypatch.setattr(whisper_draft.DraftableWhisper, "encode", spy)
    whisper = embedded.whisper
    zh = load_pcm(clip("zh/aishell_BAC009S0764W0122.wav"))
    whisper.transcribe(zh, language="zh", draft=True)
    assert seen and set(seen) == {1500}
    seen.clear()
    whisper.transcribe(load_pcm(clip("en/jfk.flac"))[: 16000 * 6], language="en", draft=True)
    assert seen and max(seen) < 1500
