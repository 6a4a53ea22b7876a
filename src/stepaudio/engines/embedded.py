"""The CPU default: Whisper for the audio, a small GGUF model for text tasks.

Everything runs in this process. Model calls are blocking, so they run in worker threads
behind limiters sized to the machine, and the event loop never waits on them.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import anyio

from stepaudio import languages
from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.config import LlmSettings, Settings, WhisperSettings
from stepaudio.engines.base import LANES, ModelOutput, Segment, TextJob, Usage, WindowJob
from stepaudio.engines.chinese_script import SIMPLIFIED, in_script, split_language
from stepaudio.engines.llama import LocalLLM
from stepaudio.engines.local_models import resolve_text_model
from stepaudio.engines.translate import Translator
from stepaudio.engines.whisper import WhisperTranscriber, resolve_device
from stepaudio.engines.whisper_batched import Heard
from stepaudio.params import Mode, ProcessParams
from stepaudio.text import clock, join_texts

# A small model rambles and loops when sampled hot; text tasks stay near-greedy.
_MAX_TEXT_TEMPERATURE = 0.3
_MAX_TEXT_TOKENS = 512


def _text_temperature(params: ProcessParams) -> float:
    """Greedy unless the request asks otherwise: a 1.5B model's best reading is its most
    likely one; sampled at the modes' defaults it inverted the sense of an answer ("what
    does he ask of them?") in one run of three."""
    if params.temperature is None:
        return 0.0
    return min(params.temperature, _MAX_TEXT_TEMPERATURE)


def _whisper_temperature(temperature: float | None) -> dict[str, Any]:
    """faster-whisper's ``temperature`` for a request's: Whisper's own schedule, the asked
    temperature first, then 0.2 higher each time a 30-s piece fails (it loops, or its
    log-probability is low) up to 1.0, as ``whisper --temperature T`` does and as OpenAI
    describes for 0. Unset: faster-whisper's default, the same schedule from 0."""
    if temperature is None:
        return {}
    steps = max(0, int((1.0 - temperature) / 0.2 + 1e-6))
    return {"temperature": [round(temperature + 0.2 * i, 2) for i in range(steps + 1)]}


def _same_language(detected: str | None, target: str) -> bool:
    """Whether text in ``detected`` (a code) is already in ``target`` (any of its names)."""
    if detected is None:
        return False
    spoken, wanted = languages.find(detected, variants=False), languages.find(target)
    return spoken is not None and spoken == wanted


_MISMATCH_PROBABILITY = 0.8
"""How sure Whisper must be that a chunk is in another language than the one asked for
before a warning says so. On the shared clips, told their language, no chunk was heard as
another above 0.45 (a 0.9 s Mandarin clip) but one: a clip filed as Mandarin that is in
English (0.996)."""


def mismatches(heard: list[Heard], language: str | None, offset: float) -> list[str]:
    """Warnings for the stretches that sound like another language than ``language``:
    Whisper told a language writes what it hears in it, translating what is not."""
    if language is None:
        return []
    return [
        f"language_mismatch: {clock(offset + h.start)}–{clock(offset + h.end)} sounds like "
        f"{_name(h.language)} ({h.probability:.0%} sure) and was written in "
        f"{_name(language)}, as asked; without a language each part is written in its own"
        for h in heard
        if h.probability >= _MISMATCH_PROBABILITY and not _same_language(h.language, language)
    ]


def _name(code: str) -> str:
    language = languages.find(code, variants=False)
    return language.english if language else code


class EmbeddedEngine:
    name = "embedded"

    def __init__(
        self,
        whisper: WhisperSettings,
        llm: LlmSettings,
        *,
        models_dir: Path,
        asr_window_s: float = 300,
        device: str = "cpu",
    ):
        """The engine gets its own settings, not the service's: ``from_settings`` picks them."""
        self.asr_window_s = asr_window_s
        self.whisper = WhisperTranscriber(
            whisper.model,
            models_dir,
            compute_type=whisper.compute_type,
            cpu_threads=whisper.threads,
            workers=whisper.workers,
            beam_size=whisper.beam_size,
            batch_size=whisper.batch_size,
            device=resolve_device(device),
            chinese_compute_type=whisper.chinese_compute_type,
        )
        self.llm_context = llm.context
        self.llm = LocalLLM(
            resolve_text_model(llm.model, models_dir),
            n_ctx=llm.context,
            threads=llm.threads,
            gpu_layers=-1 if self.whisper.device == "cuda" else 0,
        )
        self.translator = Translator(self.complete)
        self.workers = whisper.workers
        # Three times the capacity: the pipeline's gate lets short requests' windows run
        # beside long requests' and background tasks' ones (scheduler.py's lanes,
        # sync_first); it decides who runs.
        self._whisper_slots = anyio.CapacityLimiter(LANES * whisper.workers)
        self._llm_slots = anyio.CapacityLimiter(1)

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedEngine:
        return cls(
            settings.whisper,
            settings.llm,
            models_dir=settings.models_path,
            asr_window_s=settings.pipeline.asr_window_s,
            device=settings.device,
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

    def _whisper_options(self, job: WindowJob) -> dict[str, Any]:
        options: dict[str, Any] = {
            "word_timestamps": job.params.word_timestamps,
            **_whisper_temperature(job.params.temperature),
        }
        if job.params.prompt:
            options["initial_prompt"] = job.params.prompt
        if job.retry:
            # The loop guard's second attempt: Whisper's loops on repeated speech feed on
            # its previous text; without it each 30 s is decoded afresh (and the retry's
            # temperature 0 brings Whisper's whole fallback schedule on compressible text).
            options["condition_on_previous_text"] = False
            options["compression_ratio_threshold"] = 2.4
        return options

    async def run_window(self, job: WindowJob) -> ModelOutput:
        params = job.params
        target = params.target_lang.strip().lower()
        # Whisper base's own translation into English loses the meaning of Mandarin
        # (docs/benchmarks.md, "Text quality"): every translation is transcript + text model.
        options = self._whisper_options(job)
        language, script = split_language(params.language)

        def in_asked_script(segments: list[Segment]) -> list[Segment]:
            """Chinese in the script asked for."""
            return [
                in_script([s], script or SIMPLIFIED)[0] if s.language == "zh" else s
                for s in segments
            ]

        on_heard = job.on_heard
        transcript = await anyio.to_thread.run_sync(
            lambda: self.whisper.transcribe(
                job.pcm,
                language=language,
                task="transcribe",
                draft=params.draft,
                on_segments=on_heard and (lambda found: on_heard(in_asked_script(found))),
                **options,
            ),
            limiter=self._whisper_slots,
        )
        segments = in_asked_script(transcript.segments)
        usage = Usage(audio_seconds=job.pcm.size / SAMPLE_RATE)
        out = ModelOutput(
            text=join_texts(s.text for s in segments),
            segments=segments,
            language=transcript.language,
            usage=usage,
            spoken=transcript.spoken,
            warnings=mismatches(transcript.heard, language, job.offset),
        )
        if job.mode is not Mode.TRANSLATE or not out.text:
            return out
        out.source = out.text
        # What is already in the target language is its own translation.
        translated: list[Segment] = []
        for same, run in itertools.groupby(segments, lambda s: _same_language(s.language, target)):
            run_ = list(run)
            translated += run_ if same else await self.translator.translate(run_, params, usage)
        out.segments = translated
        out.text = join_texts(s.text for s in translated)
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
                temperature=_text_temperature(params),
                top_p=params.top_p,
                repeat_penalty=max(params.repetition_penalty, 1.05),
            ),
            limiter=self._llm_slots,
        )
        # Cut by the token cap: said as it is (the pipeline answers 502 output_truncated
        # rather than a success ending mid-word).
        return ModelOutput(text=text, usage=usage, truncated=truncated)

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
