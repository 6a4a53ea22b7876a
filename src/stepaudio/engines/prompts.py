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
# Chinese audio gets Chinese prompts: a small model answers in the prompt's language far
# more reliably than it follows "answer in Chinese".

TEXT_SYSTEM = "You are a careful assistant. Use only the text you are given."
TEXT_SYSTEM_ZH = "你是一个严谨的助手。只使用给你的文本。"

_ZH_NAMES = {"chinese", "mandarin", "中文", "汉语", "普通话", "简体中文", "zh", "zh-cn", "cmn"}


def is_chinese(language: str | None) -> bool:
    """Whether a language code or name (``zh``, ``zh-TW``, ``Chinese``, ``中文``) is Chinese."""
    if not language:
        return False
    lang = language.strip().lower()
    return lang in _ZH_NAMES or lang.startswith(("zh", "chinese"))


def text_system(zh: bool = False) -> str:
    return TEXT_SYSTEM_ZH if zh else TEXT_SYSTEM


def summarize_prompt(
    text: str, instruction: str | None = None, partial: bool = False, zh: bool = False
) -> str:
    extra = f"\n{instruction}" if instruction else ""
    if zh:
        what = "同一段录音各部分的摘要" if partial else "一段录音的转写文本"
        return (
            f"以下是{what}：\n\n{text}\n\n"
            "请用中文写一段简洁的摘要（几句话）：讲了什么；如果是会议或对话，"
            f"说明谁参与、讨论了什么、做了哪些决定或安排。只写文本里有的内容。{extra}"
        )
    what = "partial summaries of one recording" if partial else "a transcript of a recording"
    return (
        f"Here are {what}:\n\n{text}\n\n"
        "Write a concise summary of the recording in a few sentences: what it is about; "
        "for a meeting or conversation, who takes part, what is discussed and any decisions "
        f"or next steps. State only what the text says.{extra}"
    )


def answer_prompt(text: str, question: str, partial: bool = False, zh: bool = False) -> str:
    # The quote's form is shown with placeholders, never a time: a small model copies an
    # example's time ("[0:05]") into its answer. The service then checks every quote
    # against the transcript (pipeline/citations.py). Kept short: a 1.5B model given a
    # long list of rules echoes them back.
    if zh:
        what = "从录音各部分整理的笔记" if partial else "一段录音的转写文本（方括号里是时间）"
        return (
            f"以下是{what}：\n\n{text}\n\n问题：{question}\n"
            "请根据文本用中文回答，一两句话，然后引用支持答案的原话，写成：[时间]“原话”。"
            "只根据文字回答。"
        )
    what = (
        "notes taken from parts of a recording"
        if partial
        else "a transcript of a recording, each line starting with its time"
    )
    return (
        f"Here is {what}:\n\n{text}\n\nQuestion: {question}\n"
        "Answer the question in one or two sentences, then quote the words of the "
        'transcript that support the answer with their time, like: [m:ss] "...". Answer '
        "from the text only."
    )


def notes_prompt(text: str, question: str, zh: bool = False) -> str:
    if zh:
        return (
            f"以下是一段转写文本：\n\n{text}\n\n"
            f"请简要记下其中有助于回答这个问题的内容（保留时间）：{question}"
        )
    return (
        f"Here is part of a transcript:\n\n{text}\n\n"
        f"Write short notes of everything in it that helps answer, keeping the times: {question}"
    )


def translate_system(target_lang: str) -> str:
    if is_chinese(target_lang):
        return "你是专业翻译。把用户给的文本忠实地翻译成简体中文，只输出译文，不要解释。"
    return (
        f"You are a professional translator. Translate the user's text faithfully into "
        f"{target_lang}. Output only the translation, with no notes or explanations."
    )


def translate_prompt(text: str, target_lang: str) -> str:
    if is_chinese(target_lang):
        return f"翻译成中文：\n\n{text}"
    return f"Translate into {target_lang}:\n\n{text}"
