"""The CPU default: Whisper for the audio, a small GGUF model for text tasks.

Everything runs in this process. Model calls are blocking, so they run in worker threads
behind limiters sized to the machine, and the event loop never waits on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from stepaudio.config import LlmSettings, Settings, WhisperSettings
from stepaudio.engines import prompts
from stepaudio.engines.base import ModelOutput, TextJob, Usage, WindowJob
from stepaudio.engines.llama import LocalLLM
from stepaudio.engines.local_models import smollm2_gguf
from stepaudio.engines.whisper import WhisperTranscriber
from stepaudio.params import Mode, ProcessParams

_ENGLISH = {"english", "en", "英语", "英文"}
# A small model rambles and loops when sampled hot; text tasks stay near-greedy.
_MAX_TEXT_TEMPERATURE = 0.3
_MAX_TEXT_TOKENS = 512


class EmbeddedEngine:
    name = "embedded"

    def __init__(
        self,
        whisper: WhisperSettings,
        llm: LlmSettings,
        *,
        data_dir: Path,
        asr_window_s: float = 300,
    ):
        """The engine gets its own settings, not the service's: ``from_settings`` picks them."""
        self.asr_window_s = asr_window_s
        self.whisper = WhisperTranscriber(
            whisper.model,
            data_dir,
            compute_type=whisper.compute_type,
            cpu_threads=whisper.threads,
            workers=whisper.workers,
            beam_size=whisper.beam_size,
        )
        self.llm_context = llm.context
        self.llm = LocalLLM(llm.model or smollm2_gguf(), n_ctx=llm.context, threads=llm.threads)
        self.workers = whisper.workers
        self._whisper_slots = anyio.CapacityLimiter(whisper.workers)
        self._llm_slots = anyio.CapacityLimiter(1)

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedEngine:
        return cls(
            settings.whisper,
            settings.llm,
            data_dir=settings.data_dir,
            asr_window_s=settings.asr_window_s,
        )

    def audio_modes(self) -> frozenset[Mode]:
        return frozenset({Mode.ASR, Mode.TRANSLATE})

    def max_window_seconds(self, mode: Mode, params: ProcessParams) -> float:
        # Whisper has no context budget; windows bound memory and give progress.
        return self.asr_window_s

    def capacity(self) -> int:
        return self.workers

    def text_budget_chars(self) -> int:
        # About 3 characters a token, leaving room for the prompt and the answer.
        return min(8000, (self.llm_context - _MAX_TEXT_TOKENS - 256) * 3)

    async def run_window(self, job: WindowJob) -> ModelOutput:
        params = job.params
        to_english = job.mode is Mode.TRANSLATE and params.target_lang.strip().lower() in _ENGLISH
        transcript = await anyio.to_thread.run_sync(
            lambda: self.whisper.transcribe(
                job.pcm, language=params.language, task="translate" if to_english else "transcribe"
            ),
            limiter=self._whisper_slots,
        )
        usage = Usage(audio_seconds=job.pcm.size / 16000)
        out = ModelOutput(
            text=transcript.text,
            segments=transcript.segments,
            language=transcript.language,
            usage=usage,
        )
        if job.mode is Mode.TRANSLATE and not to_english and out.text:
            translated = await self.complete(
                TextJob(
                    prompts.TEXT_SYSTEM,
                    prompts.translate_prompt(out.text, params.target_lang),
                    params,
                )
            )
            usage.add(translated.usage)
            out.text, out.truncated = translated.text, translated.truncated
            # Segment times stay; their text is the source language's.
        return out

    async def complete(self, job: TextJob) -> ModelOutput:
        params = job.params
        messages = [
            {"role": "system", "content": job.system},
            {"role": "user", "content": job.prompt},
        ]
        text, truncated, usage = await anyio.to_thread.run_sync(
            lambda: self.llm.chat(
                messages,
                max_tokens=min(job.max_tokens or params.max_tokens, _MAX_TEXT_TOKENS),
                temperature=min(params.effective_temperature(), _MAX_TEXT_TEMPERATURE),
                top_p=params.top_p,
                repeat_penalty=max(params.repetition_penalty, 1.1),
            ),
            limiter=self._llm_slots,
        )
        # A small model stopped at its token cap still wrote a usable text; keep it.
        return ModelOutput(text=text, usage=usage, truncated=False if text else truncated)

    async def health(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "ready": True,
            "whisper_model": self.whisper.name,
            "text_model": self.llm.model_path.name,
            "capacity": self.capacity(),
        }

    async def aclose(self) -> None:
        return None
