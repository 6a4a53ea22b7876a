"""The seed's multipart fields, with its defaults, turned into ``ProcessParams``."""

from __future__ import annotations

from fastapi import Form

from stepaudio.params import DEFAULT_QUESTION, Mode, ProcessParams


def process_params(
    mode: Mode = Form(Mode.S2T, description="s2t, asr, understand, translate or summarize"),
    instruction: str | None = Form(None, description="Extra instruction (s2t, summarize)"),
    question: str = Form(DEFAULT_QUESTION, description="Question (understand)"),
    target_lang: str = Form("Chinese", description="Target language (translate)"),
    language: str | None = Form(None, description="Spoken language code; empty: detect"),
    max_tokens: int = Form(2048, description="Most tokens generated per model call"),
    temperature: float | None = Form(None, description="Sampling temperature; empty: per mode"),
    top_p: float = Form(0.9),
    repetition_penalty: float = Form(1.0),
    thinking: bool = Form(True, description="Let the model reason before answering"),
    segment_duration: float | None = Form(None, description="Window length in seconds"),
    parallel: int | None = Form(None, description="Windows processed at once"),
) -> ProcessParams:
    return ProcessParams(
        mode=mode,
        instruction=instruction or None,
        question=question,
        target_lang=target_lang,
        language=language or None,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        thinking=thinking,
        segment_duration=segment_duration,
        parallel=parallel,
    )
