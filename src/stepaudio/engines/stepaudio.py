"""One Step-Audio-R1.1 server (vLLM, OpenAI chat completions with ``input_audio`` parts).

The request is built exactly as StepFun's own client builds it (DESIGN §2): WAV 16 kHz
mono parts of at most 25 s cut at quiet points, the ``<think>\\n`` prefill continued with
``continue_final_message``, the stop token, special tokens kept, SSE streaming. The reply
is split on the first ``</think>``: before it the reasoning, after it the answer. A reply
without ``</think>`` was cut by ``max_tokens`` and is reported as truncated, never as an
answer. httpx's exceptions are translated into our error tree here, at the boundary.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from stepaudio.audio.cut import plan_cuts
from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.audio.wav import encode_wav
from stepaudio.config import BackendConfig, Settings
from stepaudio.engines import prompts
from stepaudio.engines.base import ModelOutput, Segment, TextJob, Usage, WindowJob
from stepaudio.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ContextLengthExceeded,
    StepAudioError,
)
from stepaudio.params import Mode, ProcessParams

PART_SECONDS = 25.0
"""Longest audio part: the encoder's hard limit is 29.98 s; StepFun's client uses 25 s."""
TOKENS_PER_SECOND = 313 / 25
"""Audio patches per second of a part (313 per 25 s)."""
PART_MARKERS = 2
"""Begin/end markers around each part's patches."""
STOP_TOKEN_IDS = [151665]
THINK_PREFILL = "<think>\n"
NO_THINK_PREFILL = "<think>\n\n</think>\n"
EOT = "<|EOT|>"

# Room kept for the system prompt, the instruction and the chat template (tokens).
TEXT_RESERVE_TOKENS = 300
# Expected verbatim output: about 250 tokens per spoken minute, plus the reasoning.
OUTPUT_TOKENS_PER_MINUTE = 250
REASONING_TOKENS = 1500
MIN_WINDOW_S = 10.0

# Chinese variants of the audio prompts (the model's training prompts are Chinese).
_ZH_SYSTEM = {
    Mode.ASR: "请记录下你所听到的语音内容。",
    Mode.S2T: "请记录下你所听到的语音内容。",
    Mode.TRANSLATE: "你是一名专业的口语翻译。",
    Mode.SUMMARIZE: "你擅长总结音频内容，请给出简洁的摘要。",
    Mode.UNDERSTAND: "你擅长理解音频内容，请回答关于音频的问题。",
}


def audio_part_tokens(seconds: float) -> int:
    """Prompt tokens one audio part costs (315 for a full 25 s part)."""
    return math.ceil(seconds * TOKENS_PER_SECOND) + PART_MARKERS


def text_tokens(text: str) -> int:
    """A conservative token count for text: a token per 3 UTF-8 bytes (one per CJK char)."""
    return math.ceil(len(text.encode("utf-8")) / 3)


def base_url(url: str) -> str:
    """The server's root from a base URL or a full ``…/v1/chat/completions`` URL."""
    url = url.strip().rstrip("/")
    for suffix in ("/chat/completions", "/v1"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url.rstrip("/")


def split_reasoning(text: str) -> tuple[str, str, bool]:
    """(thinking, answer, complete) from a reply that continued the ``<think>`` prefill."""
    text = text.replace(EOT, "")
    if text.startswith(THINK_PREFILL):
        text = text[len(THINK_PREFILL) :]
    head, sep, tail = text.partition("</think>")
    if not sep:
        return text.strip(), "", False
    return head.strip(), tail.strip(), True


def _is_zh(params: ProcessParams) -> bool:
    return bool(params.language and params.language.lower().startswith("zh"))


def audio_messages(mode: Mode, params: ProcessParams) -> tuple[str, str]:
    """System prompt and instruction for ``mode``; Chinese wording for Chinese audio."""
    instruction = prompts.audio_instruction(mode, params)
    if _is_zh(params):
        if mode in (Mode.ASR, Mode.S2T):
            instruction = "请逐字转写这段语音，只输出转写内容。"
        elif mode is Mode.SUMMARIZE:
            instruction = "请用音频所用的语言简要总结这段音频。"
            if params.instruction:
                instruction += "\n" + params.instruction
        return _ZH_SYSTEM[mode], instruction
    if mode is Mode.UNDERSTAND:
        instruction += "\nAnswer in the language spoken in the audio."
    return prompts.AUDIO_SYSTEM[mode], instruction


@dataclass
class StreamResult:
    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class BackendState:
    """What the last probe of the server found."""

    healthy: bool = True
    max_model_len: int | None = None
    latency_ms: float | None = None
    last_error: str | None = None
    checked_at: float | None = None
    served_models: list[str] = field(default_factory=list)


class StepAudioEngine:
    """Engine over one Step-Audio-R1.1 vLLM server. Concurrency limits live in the pool."""

    name = "step-audio"

    def __init__(
        self,
        backend: BackendConfig,
        settings: Settings,
        *,
        client: httpx.AsyncClient | None = None,
    ):
        self.config = backend
        self.settings = settings
        self.url = base_url(backend.url)
        self.model = backend.model
        self.state = BackendState()
        headers = {"Authorization": f"Bearer {backend.api_key}"} if backend.api_key else {}
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            headers=headers,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
        )
        self._no_thinking = set(settings.no_thinking_modes)

    # -- limits ---------------------------------------------------------------------

    @property
    def max_model_len(self) -> int:
        return self.state.max_model_len or self.settings.max_model_len

    def audio_modes(self) -> frozenset[Mode]:
        # s2t is asr windows plus a text summary: the pipeline composes it.
        return frozenset({Mode.ASR, Mode.TRANSLATE, Mode.SUMMARIZE, Mode.UNDERSTAND})

    def capacity(self) -> int:
        return self.config.max_concurrency

    def thinking(self, mode: Mode, params: ProcessParams) -> bool:
        return params.thinking and mode not in self._no_thinking

    def max_window_seconds(self, mode: Mode, params: ProcessParams) -> float:
        available = self.max_model_len - params.max_tokens - TEXT_RESERVE_TOKENS
        # Parts cut at quiet points are at least 20 s (all but the last), so a window of
        # W s has at most ceil(W/20) parts; each adds its markers and a rounding token.
        per_second = TOKENS_PER_SECOND + (PART_MARKERS + 1) / (PART_SECONDS * 0.8)
        seconds = available / per_second
        if mode.verbatim:
            reasoning = REASONING_TOKENS if self.thinking(mode, params) else 0
            out_budget = params.max_tokens - reasoning - 100
            seconds = min(seconds, out_budget / OUTPUT_TOKENS_PER_MINUTE * 60)
        return max(MIN_WINDOW_S, math.floor(seconds))

    def text_budget_chars(self) -> int:
        # One character may be one token (CJK); keep room for a long answer.
        return max(2000, self.max_model_len - 4096 - TEXT_RESERVE_TOKENS)

    def timeout_for(self, audio_seconds: float) -> float:
        return self.settings.request_timeout_s + self.settings.timeout_per_audio_s * audio_seconds

    # -- calls ----------------------------------------------------------------------

    async def run_window(self, job: WindowJob) -> ModelOutput:
        mode, params = job.mode, job.params
        window_s = job.pcm.size / SAMPLE_RATE
        spans = plan_cuts(job.pcm, SAMPLE_RATE, PART_SECONDS)
        parts: list[AudioPart] = []
        audio_tokens = 0
        for span in spans:
            pcm = job.pcm[round(span.start * SAMPLE_RATE) : round(span.end * SAMPLE_RATE)]
            if pcm.size == 0:
                continue
            audio_tokens += audio_part_tokens(pcm.size / SAMPLE_RATE)
            # Only the base64 bytes are kept, one part at a time: the WAV is dropped at
            # once and no str/JSON copy of the audio is ever made (see AudioPart).
            parts.append(AudioPart(base64.b64encode(encode_wav(np.asarray(pcm)))))
        system, instruction = audio_messages(mode, params)
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": [{"type": "text", "text": instruction}, *parts]},
        ]
        prompt_estimate = audio_tokens + text_tokens(system + instruction) + 32
        verbatim = mode in (Mode.ASR, Mode.TRANSLATE)
        out = await self._chat(
            messages,
            params,
            max_tokens=params.max_tokens,
            thinking=self.thinking(mode, params),
            prompt_estimate=prompt_estimate,
            audio_seconds=window_s,
            retry_without_thinking=verbatim,
        )
        out.usage.audio_seconds = window_s
        if mode.verbatim and out.text and not out.truncated:
            # The model gives one text for the whole window; per-part times are unknown.
            out.segments = [Segment(0.0, round(window_s, 3), out.text)]
        if not out.language and params.language:
            out.language = params.language
        return out

    async def complete(self, job: TextJob) -> ModelOutput:
        params = job.params
        messages = [
            {"role": "system", "content": job.system},
            {"role": "user", "content": job.prompt},
        ]
        return await self._chat(
            messages,
            params,
            max_tokens=job.max_tokens or params.max_tokens,
            thinking=params.thinking,
            prompt_estimate=text_tokens(job.system + job.prompt) + 32,
            audio_seconds=0.0,
            retry_without_thinking=False,
        )

    async def _chat(
        self,
        messages: list[dict[str, Any]],
        params: ProcessParams,
        *,
        max_tokens: int,
        thinking: bool,
        prompt_estimate: int,
        audio_seconds: float,
        retry_without_thinking: bool,
    ) -> ModelOutput:
        if prompt_estimate + max_tokens > self.max_model_len:
            # Never sent: the server would refuse it anyway, after the upload.
            raise ContextLengthExceeded(
                f"The request needs about {prompt_estimate} prompt tokens + {max_tokens} "
                f"max_tokens, over the backend's max_model_len {self.max_model_len}.",
                param="max_tokens",
            )
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": params.effective_temperature(),
            "top_p": params.top_p,
            "repetition_penalty": params.repetition_penalty,
            "stop_token_ids": STOP_TOKEN_IDS,
            "skip_special_tokens": False,
            "continue_final_message": True,
            "add_generation_prompt": False,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        usage = Usage()
        for attempt_thinking in (thinking, False):
            prefill = THINK_PREFILL if attempt_thinking else NO_THINK_PREFILL
            body["messages"] = [*messages, {"role": "assistant", "content": prefill}]
            result = await self._stream(body, audio_seconds)
            usage.prompt_tokens += result.prompt_tokens
            usage.completion_tokens += result.completion_tokens
            if attempt_thinking:
                reasoning, answer, complete = split_reasoning(result.text)
            else:
                reasoning, answer = "", result.text.replace(EOT, "").strip()
                complete = True
            complete = complete and result.finish_reason != "length"
            if complete:
                return ModelOutput(answer, reasoning, usage=usage, backend=self.url)
            if not (attempt_thinking and retry_without_thinking):
                # Cut by max_tokens: all of it is reasoning (or a partial answer), never
                # an answer. The pipeline reports it as OutputTruncated.
                thought = reasoning or answer
                return ModelOutput("", thought, usage=usage, truncated=True, backend=self.url)
        raise AssertionError("unreachable")

    async def _stream(self, body: dict[str, Any], audio_seconds: float) -> StreamResult:
        limit = self.timeout_for(audio_seconds)
        timeout = httpx.Timeout(limit, connect=min(10.0, limit))
        try:
            async with asyncio.timeout(limit):
                return await self._read_stream(body, timeout)
        except TimeoutError as exc:
            raise BackendTimeout(
                f"{self.url} did not answer within {limit:.0f} s.", code="backend_timeout"
            ) from exc

    async def _read_stream(self, body: dict[str, Any], timeout: httpx.Timeout) -> StreamResult:
        url = f"{self.url}/v1/chat/completions"
        result = StreamResult()
        pieces: list[str] = []
        done = False
        chunks = json_pieces(body)
        # Content-Length given: httpx then sends the pieces as they are, not chunked.
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(sum(len(c) for c in chunks)),
        }
        try:
            async with self._client.stream(
                "POST", url, content=_aiter(chunks), headers=headers, timeout=timeout
            ) as resp:
                if resp.status_code != 200:
                    await resp.aread()
                    raise _http_error(self.url, resp)
                async for data in _sse_data(resp.aiter_lines()):
                    if data == "[DONE]":
                        done = True
                        break
                    chunk = json.loads(data)
                    if "error" in chunk and not chunk.get("choices"):
                        raise BackendError(f"{self.url} failed mid-stream: {chunk['error']}")
                    for choice in chunk.get("choices") or []:
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            pieces.append(content)
                        if choice.get("finish_reason"):
                            result.finish_reason = choice["finish_reason"]
                    if chunk.get("usage"):
                        result.prompt_tokens = chunk["usage"].get("prompt_tokens") or 0
                        result.completion_tokens = chunk["usage"].get("completion_tokens") or 0
        except httpx.TimeoutException as exc:
            raise BackendTimeout(f"{self.url} timed out: {exc!r}") from exc
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise BackendUnavailable(f"{self.url} is unreachable: {exc!r}") from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise BackendError(f"{self.url} cut the stream: {exc!r}", code="stream_cut") from exc
        except json.JSONDecodeError as exc:
            raise BackendError(f"{self.url} sent a malformed event: {exc}") from exc
        except httpx.HTTPError as exc:
            raise BackendError(f"{self.url}: {exc!r}") from exc
        if not done or result.finish_reason is None:
            raise BackendError(
                f"{self.url} ended the stream before it finished.", code="stream_cut"
            )
        result.text = "".join(pieces)
        return result

    # -- health ---------------------------------------------------------------------

    async def probe(self, timeout: float = 5.0) -> BackendState:
        """Ask the server's /health and /v1/models; update and return ``state``."""
        state = self.state
        started = time.perf_counter()
        try:
            health = await self._client.get(f"{self.url}/health", timeout=timeout)
            if health.status_code != 200:
                raise BackendError(f"/health answered {health.status_code}")
            resp = await self._client.get(f"{self.url}/v1/models", timeout=timeout)
            if resp.status_code != 200:
                raise BackendError(f"/v1/models answered {resp.status_code}")
            models = resp.json().get("data") or []
            state.served_models = [m.get("id", "") for m in models]
            entry = next((m for m in models if m.get("id") == self.model), None)
            if entry is None:
                raise BackendError(
                    f"model {self.model!r} is not served (serves {state.served_models})"
                )
            if entry.get("max_model_len"):
                state.max_model_len = int(entry["max_model_len"])
            state.latency_ms = round((time.perf_counter() - started) * 1000, 1)
            state.healthy, state.last_error = True, None
        except (httpx.HTTPError, ValueError, StepAudioError) as exc:
            state.healthy = False
            state.last_error = getattr(exc, "message", None) or repr(exc)
        state.checked_at = time.time()
        return state

    def describe(self) -> dict[str, Any]:
        s = self.state
        return {
            "url": self.url,
            "model": self.model,
            "healthy": s.healthy,
            "max_model_len": self.max_model_len,
            "max_model_len_reported": s.max_model_len is not None,
            "capacity": self.capacity(),
            "latency_ms": s.latency_ms,
            "last_error": s.last_error,
        }

    async def health(self) -> dict[str, Any]:
        await self.probe()
        return {"engine": self.name, "ready": self.state.healthy, "backends": [self.describe()]}

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()


@dataclass(frozen=True, eq=False)
class AudioPart:
    """An ``input_audio`` part whose WAV is already base64-encoded (ASCII bytes).

    A 90 s window is ~3.8 MB of base64; held as a str in the message dict and then
    serialised whole by ``json=``, it existed three times over (str, JSON str, encoded
    bytes) for every request in flight. Kept as bytes and spliced into the body by
    ``json_pieces``, it exists once.
    """

    data: bytes

    def json_pieces(self) -> list[bytes]:
        # base64 needs no JSON escaping ("+", "/", "=" are plain in a JSON string).
        return [b'{"type":"input_audio","input_audio":{"data":"', self.data, b'","format":"wav"}}']


def json_pieces(body: Any) -> list[bytes]:
    """``body`` as UTF-8 JSON, in pieces whose concatenation is the whole document.

    Serialised as httpx's ``json=`` does (compact, not ASCII-escaped); every AudioPart is
    spliced in as its own pieces, so the audio is never copied into one large string.
    """
    marker = f"\x00audio-part-{uuid.uuid4().hex}\x00"
    audio: list[AudioPart] = []

    def placeholder(obj: object) -> str:
        if isinstance(obj, AudioPart):
            audio.append(obj)
            return marker
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    text = json.dumps(
        body, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=placeholder
    )
    # The marker comes out as one quoted JSON string; the random token keeps any text of
    # the request from ever matching it.
    quoted = json.dumps(marker)
    between = text.split(quoted)
    assert len(between) == len(audio) + 1
    out: list[bytes] = [between[0].encode("utf-8")]
    for part, rest in zip(audio, between[1:], strict=True):
        out += part.json_pieces()
        out.append(rest.encode("utf-8"))
    return out


async def _aiter(chunks: list[bytes]) -> AsyncIterator[bytes]:
    """The body for httpx's AsyncClient, which only streams async iterables."""
    for chunk in chunks:
        yield chunk


async def _sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The payloads of an SSE stream's ``data:`` lines."""
    async for line in lines:
        if line.startswith("data:"):
            yield line[5:].strip()


def _http_error(url: str, resp: httpx.Response) -> StepAudioError:
    try:
        detail = resp.json()
        message = (detail.get("error") or {}).get("message") or detail.get("message") or ""
        if not message and isinstance(detail.get("detail"), str):
            message = detail["detail"]
    except (ValueError, AttributeError):
        message = resp.text[:500]
    text = f"{url} answered {resp.status_code}: {message}"
    if resp.status_code == 400 and "maximum context length" in message:
        return ContextLengthExceeded(text, param="max_tokens")
    if resp.status_code in (502, 503, 504):
        return BackendUnavailable(text)
    return BackendError(text, code=f"http_{resp.status_code}")
