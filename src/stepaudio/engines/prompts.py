"""What we ask the models, per mode: system prompts, audio instructions, text-task prompts.

Audio prompts are the ones seen in use with Step-Audio-R1.1
(docs/step-audio-protocol.md). Text prompts serve the reduce steps (summaries and answers
over transcripts or partial results) and the embedded engine's text model.
"""

from __future__ import annotations

from stepaudio.params import Mode, ProcessParams

AUDIO_SYSTEM = {
    Mode.ASR: "You are an expert speech recognition system. Transcribe the audio accurately.",
    Mode.S2T: "You are an expert speech recognition system. Transcribe the audio accurately.",
    Mode.TRANSLATE: "You are an expert translator of spoken language.",
    Mode.SUMMARIZE: "You are an expert at summarizing audio content. Provide a concise summary.",
    Mode.UNDERSTAND: "You are an expert at understanding audio. Answer questions about it.",
}


def audio_instruction(mode: Mode, params: ProcessParams) -> str:
    """The text placed before the audio parts in the user message."""
    if mode in (Mode.ASR, Mode.S2T):
        text = "Transcribe the speech verbatim, in its own language. Output only the transcript."
    elif mode is Mode.TRANSLATE:
        text = f"Listen to the audio and translate it to {params.target_lang}."
    elif mode is Mode.SUMMARIZE:
        text = "Summarize this audio concisely, in the language it is spoken."
    else:
        text = params.question
    if params.instruction and mode in (Mode.SUMMARIZE, Mode.S2T):
        text = f"{text}\n{params.instruction}"
    return text


# -- text-only prompts (reduce steps, embedded text model) ----------------------------

TEXT_SYSTEM = "You are a careful assistant. Use only the text you are given."


def summarize_prompt(text: str, instruction: str | None = None, partial: bool = False) -> str:
    what = "partial summaries of one recording" if partial else "a transcript of a recording"
    extra = f"\n{instruction}" if instruction else ""
    return (
        f"Here are {what}:\n\n{text}\n\n"
        f"Write a concise summary of the recording in a few sentences.{extra}"
    )


def answer_prompt(text: str, question: str, partial: bool = False) -> str:
    what = "notes taken from parts of a recording" if partial else "a transcript of a recording"
    return (
        f"Here is {what}:\n\n{text}\n\nQuestion: {question}\n"
        "Answer the question in one or two sentences."
    )


def notes_prompt(text: str, question: str) -> str:
    return (
        f"Here is part of a transcript:\n\n{text}\n\n"
        f"Write short notes of everything in it that helps answer: {question}"
    )


def translate_prompt(text: str, target_lang: str) -> str:
    return (
        f"Translate the following text into {target_lang}. Output only the translation.\n\n{text}"
    )
