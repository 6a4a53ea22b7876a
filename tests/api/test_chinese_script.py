"""Mandarin transcripts in one script, the one the request's language code asks for.

Whisper base writes half of the Mandarin test clips in Traditional characters and half
in Simplified (律師楊春淹井… for a mainland recording): a reader got a mix."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import zhconv

from tests.helpers import clip

# Clips Whisper base writes in Traditional characters when left to itself.
CLIPS = ["zh/thchs30_A11_0.wav", "zh/aishell_BAC009S0764W0122.wav"]


def asr(client: httpx.Client, path: Path, **fields: str) -> httpx.Response:
    with open(path, "rb") as f:
        return client.post(
            "/api/process", files={"audio": (path.name, f)}, data={"mode": "asr", **fields}
        )


def simplified(text: str) -> bool:
    return text == zhconv.convert(text, "zh-cn")


@pytest.mark.parametrize("name", CLIPS)
def test_mandarin_is_written_in_simplified_by_default(client: httpx.Client, name: str):
    for fields in ({"language": "zh"}, {}):
        r = asr(client, clip(name), **fields)
        assert r.status_code == 200, r.text
        answer = r.json()["answer"]
        assert answer and simplified(answer), (fields, answer)


def test_zh_tw_asks_for_traditional_and_v1_takes_it_too(client: httpx.Client):
    path = clip(CLIPS[0])
    r = asr(client, path, language="zh-TW")
    assert r.status_code == 200, r.text
    answer = r.json()["answer"]
    assert answer == zhconv.convert(answer, "zh-tw") and not simplified(answer), answer
    with open(path, "rb") as f:
        r = client.post(
            "/v1/audio/transcriptions",
            files={"file": (path.name, f)},
            data={"model": "whisper-1", "language": "zh-Hant", "response_format": "json"},
        )
    assert r.status_code == 200, r.text
    assert r.json()["text"] == answer


@pytest.mark.parametrize("bad", ["zh-xx", "klingon", "e n"])
def test_a_language_whisper_lacks_is_a_400_naming_the_field(client: httpx.Client, bad: str):
    r = asr(client, clip("en/jfk.flac"), language=bad)
    assert r.status_code == 400, r.text
    assert "language" in r.text


def test_mandarin_pauses_are_punctuated(client: httpx.Client):
    """Whisper base writes this clip as phrases parted by spaces, with no marks."""
    r = asr(client, clip("zh/aishell-BAC009S0724W0121.wav"), language="zh")
    assert r.status_code == 200, r.text
    body = r.json()
    assert "，" in body["answer"] and " " not in body["answer"], body["answer"]
    assert all(s["text"].endswith(("。", "！", "？")) for s in body["segments"]), body["segments"]
