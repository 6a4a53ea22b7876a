"""The stand-in enforces DESIGN §2 and answers with real transcripts."""

from __future__ import annotations

import base64
import concurrent.futures

import httpx
import numpy as np
import pytest

from stepaudio.audio import DecodedAudio, encode_wav
from stepaudio.config import Settings
from stepaudio.testing import StandIn
from stepaudio.testing.standin_requests import prompt_tokens
from stepaudio.testing.standin_sse import tokenize
from tests.helpers import clip


def load_pcm(name: str, settings: Settings) -> np.ndarray:
    with DecodedAudio.from_file(clip(name), settings.data_dir / "tmp") as decoded:
        return np.array(decoded.samples)


def body(parts: list[bytes], **over) -> dict:
    content = [{"type": "text", "text": "Transcribe the speech verbatim."}]
    for wav in parts:
        data = base64.b64encode(wav).decode()
        content.append({"type": "input_audio", "input_audio": {"data": data, "format": "wav"}})
    out = {
        "model": "Step-Audio-R1.1",
        "messages": [
            {"role": "system", "content": "You are an expert speech recognition system."},
            {"role": "user", "content": content},
            {"role": "assistant", "content": "<think>\n"},
        ],
        "max_tokens": 512,
        "temperature": 0.0,
        "stop_token_ids": [151665],
        "skip_special_tokens": False,
        "continue_final_message": True,
        "add_generation_prompt": False,
        "stream": True,
    }
    out.update(over)
    return out


@pytest.fixture(scope="module")
def standin(settings: Settings):
    with StandIn(data_dir=settings.data_dir, max_model_len=4096, max_num_seqs=2) as si:
        yield si


@pytest.fixture(scope="module")
def jfk(settings: Settings) -> np.ndarray:
    return load_pcm("en/jfk.flac", settings)


def post(url: str, payload: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=payload, timeout=60)


def test_models_and_health(standin: StandIn) -> None:
    models = httpx.get(f"{standin.url}/v1/models").json()
    assert models["data"][0]["id"] == "Step-Audio-R1.1"
    assert models["data"][0]["max_model_len"] == 4096
    assert httpx.get(f"{standin.url}/health").status_code == 200


def test_streams_real_transcript_in_think_block(standin: StandIn, jfk: np.ndarray) -> None:
    resp = post(standin.url, body([encode_wav(jfk)], stream_options={"include_usage": True}))
    assert resp.status_code == 200
    lines = [ln for ln in resp.text.splitlines() if ln.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    import json

    chunks = [json.loads(ln[6:]) for ln in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(ch["delta"].get("content", "") for c in chunks for ch in c["choices"])
    assert "</think>" in text and "ask not what your country" in text.split("</think>")[1]
    assert chunks[-1]["usage"]["prompt_tokens"] > 0
    assert any(ch["finish_reason"] == "stop" for c in chunks for ch in c["choices"])


def test_max_tokens_cuts_with_length(standin: StandIn, jfk: np.ndarray) -> None:
    resp = post(standin.url, body([encode_wav(jfk)], max_tokens=5))
    assert '"finish_reason": "length"' in resp.text
    assert "</think>" not in resp.text


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"continue_final_message": False}, "continue_final_message"),
        ({"add_generation_prompt": True}, "add_generation_prompt"),
        ({"skip_special_tokens": True}, "skip_special_tokens"),
        ({"stop_token_ids": []}, "stop_token_ids"),
    ],
)
def test_flags_are_checked(standin: StandIn, jfk: np.ndarray, change, fragment) -> None:
    before = len(standin.stats.violations)
    resp = post(standin.url, body([encode_wav(jfk)], **change))
    assert resp.status_code == 400 and fragment in resp.json()["message"]
    assert len(standin.stats.violations) == before + 1


def test_prefill_wav_format_and_part_length(standin: StandIn, jfk: np.ndarray) -> None:
    b = body([encode_wav(jfk)])
    b["messages"][-1]["content"] = "hello"
    assert post(standin.url, b).status_code == 400
    stereo = encode_wav(jfk[:16000])
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.repeat(jfk[:16000], 2).tobytes())
    assert post(standin.url, body([buf.getvalue()])).status_code == 400
    assert post(standin.url, body([stereo[:20]])).status_code == 400
    # 30 s (jfk then silence): over the encoder's 29.98 s.
    long = np.concatenate([jfk, np.zeros(30 * 16000 - jfk.size, dtype=jfk.dtype)])
    resp = post(standin.url, body([encode_wav(long)]))
    assert resp.status_code == 400 and "29.98" in resp.json()["message"]
    before = len(standin.stats.violations)
    post(standin.url, body([encode_wav(long[: 27 * 16000])]))  # accepted, but over 25 s
    assert "over 25 s" in standin.stats.violations[before]


def test_context_length_like_vllm(standin: StandIn, jfk: np.ndarray) -> None:
    resp = post(standin.url, body([encode_wav(jfk)], max_tokens=4000))
    assert resp.status_code == 400
    assert "maximum context length is 4096 tokens" in resp.json()["message"]


def test_token_accounting() -> None:
    assert prompt_tokens([25.0], [], 0) == 315
    assert prompt_tokens([25.0, 25.0], ["abc"], 3) == 630 + 1 + 12
    text = "reasoning here\n</think>\nAnd so, my fellow 中文字<|EOT|>"
    assert "".join(tokenize(text)) == text


def test_queues_beyond_max_num_seqs(standin: StandIn, jfk: np.ndarray) -> None:
    standin.latency = (0.3, 0.0)
    try:
        payload = body([encode_wav(jfk[: 16000 * 3])])
        with concurrent.futures.ThreadPoolExecutor(5) as ex:
            codes = list(ex.map(lambda _: post(standin.url, payload).status_code, range(5)))
    finally:
        standin.latency = (0.0, 0.0)
    assert codes == [200] * 5
    assert standin.stats.max_running <= 2
    assert standin.stats.max_concurrency >= 3


def test_fail_modes_and_restart(settings: Settings, jfk: np.ndarray) -> None:
    with StandIn(data_dir=settings.data_dir) as si:
        payload = body([encode_wav(jfk[: 16000 * 2])])
        si.fail("500", times=1)
        assert post(si.url, payload).status_code == 500
        assert post(si.url, payload).status_code == 200
        si.fail("cut")
        with pytest.raises(httpx.RemoteProtocolError):
            post(si.url, payload)
        si.fail(None)
        url = si.url
        si.stop()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health")
        si.start()
        assert si.url == url and httpx.get(f"{url}/health").status_code == 200


def test_lenient_mode_answers_plain_chat(settings: Settings) -> None:
    with StandIn(data_dir=settings.data_dir, strict=False) as si:
        resp = httpx.post(
            f"{si.url}/v1/chat/completions",
            json={
                "model": "Step-Audio-R1.1",
                "messages": [
                    {"role": "user", "content": "Here is a text:\n\nOne. Two. Three.\n\nSummarize."}
                ],
                "max_tokens": 100,
            },
        )
        assert resp.status_code == 200
        assert resp.json()["choices"][0]["message"]["content"] == "One. Two."
