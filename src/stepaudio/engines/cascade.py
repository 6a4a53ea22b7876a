"""Remote cascade: any OpenAI ``/v1/audio/transcriptions`` server for the transcript
(vLLM serving Whisper, speaches, OpenAI itself) plus any OpenAI chat endpoint for the text
tasks (summaries, answers, translations of the transcript). The embedded engine is the
local case of the same cascade.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.audio.wav import encode_wav
from stepaudio.config import Settings
from stepaudio.engines import prompts
from stepaudio.engines.base import ModelOutput, Segment, TextJob, Usage, WindowJob
from stepaudio.engines.http import base_url, bearer, map_errors, raise_for_status, split_credentials
from stepaudio.engines.stepaudio.wire import split_reasoning
from stepaudio.errors import BackendError, BackendUnavailable, InvalidParameter, StepAudioError
from stepaudio.params import Mode, ProcessParams

_ENGLISH = {"english", "en", "英语", "英文"}


class CascadeEngine:
    """Transcription server + chat server: the ``cascade`` settings group (its
    ``transcription_url`` required) and the ``backend`` group's timeouts."""

    name = "cascade"

    def __init__(self, settings: Settings, *, client: httpx.AsyncClient | None = None):
        self.settings = settings
        # Credentials in the configured URLs go with each request, never into the URLs
        # kept: they are what health() and every error message show.
        self.asr_url, self.asr_auth = split_credentials(
            base_url(settings.cascade.transcription_url or "")
        )
        if not self.asr_url:
            raise InvalidParameter("transcription_url is not set", param="transcription_url")
        self.asr_model = settings.cascade.transcription_model
        self.asr_key = settings.cascade.transcription_api_key
        self.chat_url: str | None = None
        self.chat_auth: httpx.BasicAuth | None = None
        if settings.cascade.chat_url:
            self.chat_url, self.chat_auth = split_credentials(base_url(settings.cascade.chat_url))
        self.chat_model = settings.cascade.chat_model
        self.chat_key = settings.cascade.chat_api_key
        self.chat_context = settings.cascade.chat_context
        self._capacity = settings.cascade.concurrency
        self._own_client = client is None
        self._client = client or httpx.AsyncClient()

    def audio_modes(self) -> frozenset[Mode]:
        return frozenset({Mode.ASR, Mode.TRANSLATE})

    def max_window_seconds(self, mode: Mode, params: ProcessParams) -> float:
        # Transcription servers take whole files; windows bound uploads and give progress.
        return self.settings.pipeline.asr_window_s

    def capacity(self) -> int:
        return self._capacity

    def text_budget_chars(self) -> int:
        return max(2000, (self.chat_context - 1024) * 2)

    def _timeout(self, audio_seconds: float) -> float:
        s = self.settings
        return s.backend.request_timeout_s + s.backend.timeout_per_audio_s * audio_seconds

    async def _post(self, url: str, audio_seconds: float, **kwargs: Any) -> dict[str, Any]:
        limit = self._timeout(audio_seconds)
        with map_errors(url, timeout=limit):
            async with asyncio.timeout(limit):
                resp = await self._client.post(url, timeout=limit, **kwargs)
            raise_for_status(url, resp)
            return resp.json()

    async def run_window(self, job: WindowJob) -> ModelOutput:
        params = job.params
        seconds = job.pcm.size / SAMPLE_RATE
        to_english = job.mode is Mode.TRANSLATE and params.target_lang.strip().lower() in _ENGLISH
        path = "translations" if to_english else "transcriptions"
        data = {"model": self.asr_model, "response_format": "verbose_json"}
        if params.language and not to_english:
            data["language"] = params.language
        if params.temperature is not None:
            # Only when asked: unset, the server's own default (Whisper's fallback from 0).
            data["temperature"] = str(params.temperature)
        body = await self._post(
            f"{self.asr_url}/v1/audio/{path}",
            seconds,
            data=data,
            files={"file": ("audio.wav", encode_wav(job.pcm), "audio/wav")},
            headers=bearer(self.asr_key),
            auth=self.asr_auth,
        )
        segments = [
            Segment(round(float(s["start"]), 3), round(float(s["end"]), 3), s["text"].strip())
            for s in body.get("segments") or []
            if str(s.get("text", "")).strip()
        ]
        text = str(body.get("text", "")).strip()
        language = body.get("language")
        usage = Usage(audio_seconds=seconds)
        out = ModelOutput(text, segments=segments, language=language, usage=usage)
        if job.mode is Mode.TRANSLATE and not to_english and text:
            job_text = TextJob(
                prompts.TEXT_SYSTEM, prompts.translate_prompt(text, params.target_lang), params
            )
            translated = await self.complete(job_text)
            usage.add(translated.usage)
            out.source = text
            out.text, out.thinking, out.truncated = (
                translated.text,
                translated.thinking,
                translated.truncated,
            )
        return out

    async def complete(self, job: TextJob) -> ModelOutput:
        if self.chat_url is None:
            raise BackendUnavailable(
                "No chat endpoint is configured for text tasks (set chat_url).",
                code="no_chat_backend",
            )
        params = job.params
        body = {
            "model": self.chat_model,
            "messages": [
                {"role": "system", "content": job.system},
                {"role": "user", "content": job.prompt},
            ],
            "max_tokens": job.max_tokens or params.max_tokens,
            "temperature": params.effective_temperature(),
            "top_p": params.top_p,
            "stream": False,
        }
        reply = await self._post(
            f"{self.chat_url}/v1/chat/completions",
            0.0,
            json=body,
            headers=bearer(self.chat_key),
            auth=self.chat_auth,
        )
        try:
            choice = reply["choices"][0]
            content = choice["message"].get("content") or ""
            reasoning = choice["message"].get("reasoning_content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise BackendError(f"Malformed chat completion: {exc!r}") from exc
        truncated = choice.get("finish_reason") == "length"
        if "</think>" in content or content.lstrip().startswith("<think>"):
            reasoning, content, complete = split_reasoning(content.lstrip())
            truncated = truncated or not complete
        u = reply.get("usage") or {}
        usage = Usage(
            prompt_tokens=u.get("prompt_tokens") or 0,
            completion_tokens=u.get("completion_tokens") or 0,
        )
        if truncated:
            return ModelOutput("", reasoning or content, usage=usage, truncated=True)
        return ModelOutput(content.strip(), reasoning.strip(), usage=usage)

    async def health(self) -> dict[str, Any]:
        parts: dict[str, Any] = {}
        for label, url, key, auth in (
            ("transcription", self.asr_url, self.asr_key, self.asr_auth),
            ("chat", self.chat_url, self.chat_key, self.chat_auth),
        ):
            if url is None:
                continue
            try:
                with map_errors(url, timeout=5.0):
                    resp = await self._client.get(
                        f"{url}/v1/models", headers=bearer(key), auth=auth, timeout=5.0
                    )
            except StepAudioError as exc:
                parts[label] = {"url": url, "healthy": False, "last_error": exc.message}
                continue
            ok = resp.status_code == 200
            parts[label] = {"url": url, "healthy": ok, "status": resp.status_code}
        ready = all(p["healthy"] for p in parts.values())
        return {"engine": self.name, "ready": ready, "capacity": self.capacity(), **parts}

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()
