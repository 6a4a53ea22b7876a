"""One Step-Audio-R1.1 server (vLLM, OpenAI chat completions with ``input_audio`` parts).

The body is built as StepFun's own client builds it (``body``), the SSE reply
read by ``stream``, the token arithmetic and reply format are the model's facts
(``wire``). The reply is split on the first ``</think>``: before it the
reasoning, after it the answer; a reply without ``</think>`` was cut by ``max_tokens``
and is reported as truncated, never as an answer. httpx's exceptions become our error
tree through ``engines.http``, the one mapping every engine uses.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.config import BackendConfig, Settings
from stepaudio.engines.base import ModelOutput, Segment, TextJob, Usage, WindowJob
from stepaudio.engines.http import (
    base_url,
    bearer,
    map_errors,
    raise_for_status,
    split_credentials,
    status_error,
)
from stepaudio.engines.stepaudio import wire
from stepaudio.engines.stepaudio.body import (
    aiter_pieces,
    audio_messages,
    audio_parts,
    chat_body,
    json_pieces,
    with_prefill,
)
from stepaudio.engines.stepaudio.stream import StreamResult, read_completion
from stepaudio.errors import BackendError, ContextLengthExceeded, StepAudioError, scrub_credentials
from stepaudio.params import Mode, ProcessParams


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
        # Credentials in the configured URL go with each request, never into ``url``:
        # it is shown by describe(), every error message and every output.
        self.url, self._auth = split_credentials(base_url(backend.url))
        self.model = backend.model
        self.state = BackendState()
        headers = bearer(backend.api_key)
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            headers=headers,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
        )
        self._no_thinking = set(settings.backend.no_thinking_modes)

    # -- limits ---------------------------------------------------------------------

    @property
    def max_model_len(self) -> int:
        return self.state.max_model_len or self.settings.backend.max_model_len

    def audio_modes(self) -> frozenset[Mode]:
        # s2t is asr windows plus a text summary: the pipeline composes it.
        return frozenset({Mode.ASR, Mode.TRANSLATE, Mode.SUMMARIZE, Mode.UNDERSTAND})

    def capacity(self) -> int:
        return self.config.max_concurrency

    def thinking(self, mode: Mode, params: ProcessParams) -> bool:
        return params.thinking and mode not in self._no_thinking

    def max_window_seconds(self, mode: Mode, params: ProcessParams) -> float:
        return wire.max_window_seconds(
            self.max_model_len,
            params.max_tokens,
            verbatim=mode.verbatim,
            thinking=self.thinking(mode, params),
        )

    def text_budget_chars(self) -> int:
        return wire.text_budget_chars(self.max_model_len)

    def timeout_for(self, audio_seconds: float) -> float:
        return (
            self.settings.backend.request_timeout_s
            + self.settings.backend.timeout_per_audio_s * audio_seconds
        )

    # -- calls ----------------------------------------------------------------------

    async def run_window(self, job: WindowJob) -> ModelOutput:
        mode, params = job.mode, job.params
        window_s = job.pcm.size / SAMPLE_RATE
        parts, audio_tokens = audio_parts(job.pcm)
        system, instruction = audio_messages(mode, params)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": [{"type": "text", "text": instruction}, *parts]},
        ]
        prompt_estimate = audio_tokens + wire.text_tokens(system + instruction) + 32
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
            prompt_estimate=wire.text_tokens(job.system + job.prompt) + 32,
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
        body = chat_body(self.model, messages, params, max_tokens=max_tokens)
        usage = Usage()
        for attempt_thinking in (thinking, False):
            attempt = with_prefill(body, messages, thinking=attempt_thinking)
            result = await self._stream(attempt, audio_seconds)
            usage.prompt_tokens += result.prompt_tokens
            usage.completion_tokens += result.completion_tokens
            if attempt_thinking:
                reasoning, answer, complete = wire.split_reasoning(result.text)
            else:
                reasoning, answer = "", result.text.replace(wire.EOT, "").strip()
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
        url = f"{self.url}/v1/chat/completions"
        chunks = json_pieces(body)
        # Content-Length given: httpx then sends the pieces as they are, not chunked.
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(sum(len(c) for c in chunks)),
        }
        with map_errors(self.url, timeout=limit):
            async with (
                asyncio.timeout(limit),
                self._client.stream(
                    "POST",
                    url,
                    content=aiter_pieces(chunks),
                    headers=headers,
                    timeout=timeout,
                    auth=self._auth,
                ) as resp,
            ):
                if resp.status_code != 200:
                    await resp.aread()
                    raise status_error(self.url, resp)
                return await read_completion(self.url, resp.aiter_lines())

    # -- health ---------------------------------------------------------------------

    async def probe(self, timeout: float = 5.0) -> BackendState:
        """Ask the server's /health and /v1/models; update and return ``state``."""
        state = self.state
        started = time.perf_counter()
        try:
            with map_errors(self.url, timeout=timeout):
                health = await self._client.get(
                    f"{self.url}/health", timeout=timeout, auth=self._auth
                )
                raise_for_status(f"{self.url}/health", health)
                resp = await self._client.get(
                    f"{self.url}/v1/models", timeout=timeout, auth=self._auth
                )
                raise_for_status(f"{self.url}/v1/models", resp)
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
        except (StepAudioError, ValueError, AttributeError, TypeError) as exc:
            # A failing probe is the backend's state, never raised: the pool polls on.
            state.healthy = False
            # Shown by /api/status and the page: a library's repr may quote a URL.
            state.last_error = scrub_credentials(getattr(exc, "message", None) or repr(exc))
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
