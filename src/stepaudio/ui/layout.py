"""What is on the page: its components, their first (English) texts and the form's
defaults, and how each text follows a change of language. What the controls do is in
``app.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from stepaudio.params import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODE,
    DEFAULT_TARGET_LANG,
    Mode,
    ProcessParams,
)
from stepaudio.ui.i18n import LANGUAGES, t

MODE_KEYS = {m.value: f"mode_{m.value}" for m in Mode}
TARGET_LANGUAGES = ["Chinese", "English", "Japanese", "Korean", "French", "German", "Spanish"]

Relabel = Callable[[str], Any]
"""A component's new value or update for a language."""


def mode_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(lang, key), value) for value, key in MODE_KEYS.items()]


def logout_link(lang: str) -> str:
    return f'<a href="/logout" id="sa-logout">{t(lang, "logout")}</a>'


def _label(key: str) -> Relabel:
    return lambda lang: gr.update(label=t(lang, key))


def _text(key: str, template: str = "{}") -> Relabel:
    return lambda lang: template.format(t(lang, key))


@dataclass
class Page:
    """The page's components, built inside a ``gr.Blocks`` by ``lay_out``."""

    c: dict[str, Any]
    """Components by name (``audio``, ``mode``, ``answer``…)."""
    relabels: list[tuple[Any, Relabel]] = field(default_factory=list)
    """Every component whose text depends on the language, with how to redo it."""

    def __getitem__(self, name: str) -> Any:
        return self.c[name]

    def all(self, *names: str) -> list[Any]:
        return [self.c[n] for n in names]


RESULTS = (
    "progress",
    "answer",
    "thought",
    "transcript",
    "summary",
    "files",
    "task_id",
    "speakers",
)
"""The result side, in the order of ``app.view_outputs``."""
FORM = (
    "mode",
    "question",
    "target",
    "instruction",
    "max_tokens",
    "temperature",
    "thinking",
    "segment",
    "diarize",
)
"""The form, in the order the process handler takes it."""
RESTORED = ("mode", "question", "target")
"""What a reopened task puts back into the form (its mode, question, target_lang)."""


def lay_out() -> Page:
    """Create the page's components (call inside ``gr.Blocks``), in English."""
    en = "en"
    c: dict[str, Any] = {}
    with gr.Row(equal_height=True):
        c["title"] = gr.Markdown(f"## {t(en, 'title')}", elem_id="sa-title")
        c["logout"] = gr.HTML(
            logout_link(en), visible=False, elem_id="sa-logout-box", scale=0, min_width=120
        )
        c["lang"] = gr.Radio(
            [(name, code) for code, name in LANGUAGES.items()],
            value=en,
            label=t(en, "language"),
            elem_id="sa-lang",
            scale=0,
            min_width=220,
        )
    c["intro"] = gr.Markdown(t(en, "intro"))
    with gr.Tabs():
        with gr.Tab(t(en, "tab_process"), id="process") as c["tab_process"], gr.Row():
            with gr.Column(scale=2):
                _form(c, en)
            with gr.Column(scale=3):
                _results(c, en)
        with gr.Tab(t(en, "tab_status"), id="status") as c["tab_status"]:
            c["status"] = gr.Markdown(elem_id="sa-status")
            c["refresh"] = gr.Button(t(en, "refresh"), size="sm")
    relabels: list[tuple[Any, Relabel]] = [
        (c["title"], _text("title", "## {}")),
        (c["logout"], logout_link),
        (c["intro"], _text("intro")),
        (c["lang"], _label("language")),
        (c["tab_process"], _label("tab_process")),
        (c["tab_status"], _label("tab_status")),
        (c["audio"], _label("audio")),
        (c["mode"], lambda lang: gr.update(choices=mode_choices(lang), label=t(lang, "mode"))),
        (c["question"], _label("question")),
        (c["target"], _label("target_lang")),
        (c["instruction"], _label("instruction")),
        (c["advanced"], _label("advanced")),
        (c["max_tokens"], _label("max_tokens")),
        (c["temperature"], _label("temperature")),
        (c["thinking"], _label("thinking")),
        (c["segment"], _label("segment")),
        (c["diarize"], _label("diarize")),
        (c["speakers"], _label("speakers")),
        (c["as_task"], _label("as_task")),
        (c["run"], lambda lang: gr.update(value=t(lang, "run"))),
        (c["answer"], _label("answer")),
        (c["reasoning"], _label("thinking_box")),
        (c["transcript"], _label("transcript")),
        (c["summary"], _label("summary")),
        (c["files"], _label("downloads")),
        (c["task_id"], _label("task")),
        (c["refresh"], lambda lang: gr.update(value=t(lang, "refresh"))),
    ]
    return Page(c, relabels)


def _form(c: dict[str, Any], en: str) -> None:
    defaults = ProcessParams()
    c["audio"] = gr.Audio(
        sources=["upload", "microphone"], type="filepath", label=t(en, "audio"), elem_id="sa-audio"
    )
    c["info"] = gr.Markdown(elem_id="sa-info")
    c["mode"] = gr.Radio(
        mode_choices(en), value=DEFAULT_MODE.value, label=t(en, "mode"), elem_id="sa-mode"
    )
    c["question"] = gr.Textbox(label=t(en, "question"), visible=False, elem_id="sa-question")
    c["target"] = gr.Dropdown(
        TARGET_LANGUAGES,
        value=DEFAULT_TARGET_LANG,
        allow_custom_value=True,
        label=t(en, "target_lang"),
        visible=False,
        elem_id="sa-target",
    )
    c["instruction"] = gr.Textbox(label=t(en, "instruction"), elem_id="sa-instr")
    with gr.Accordion(t(en, "advanced"), open=False) as c["advanced"]:
        c["max_tokens"] = gr.Slider(
            64, 16384, value=DEFAULT_MAX_TOKENS, step=64, label=t(en, "max_tokens")
        )
        c["temperature"] = gr.Slider(
            0, 2, value=defaults.effective_temperature(), step=0.05, label=t(en, "temperature")
        )
        c["thinking"] = gr.Checkbox(value=defaults.thinking, label=t(en, "thinking"))
        c["segment"] = gr.Number(value=0, minimum=0, label=t(en, "segment"), elem_id="sa-segment")
        c["diarize"] = gr.Checkbox(
            value=defaults.diarize, label=t(en, "diarize"), elem_id="sa-diarize"
        )
        c["as_task"] = gr.Checkbox(value=False, label=t(en, "as_task"), elem_id="sa-as-task")
    c["run"] = gr.Button(t(en, "run"), variant="primary", elem_id="sa-run")


def _results(c: dict[str, Any], en: str) -> None:
    c["progress"] = gr.HTML(elem_id="sa-progress")
    c["answer"] = gr.Textbox(
        label=t(en, "answer"), lines=6, interactive=False, buttons=["copy"], elem_id="sa-answer"
    )
    with gr.Accordion(t(en, "thinking_box"), open=False) as c["reasoning"]:
        c["thought"] = gr.Textbox(show_label=False, lines=6, interactive=False, elem_id="sa-think")
    c["transcript"] = gr.Textbox(
        label=t(en, "transcript"),
        lines=8,
        max_lines=30,
        interactive=False,
        buttons=["copy"],
        elem_id="sa-transcript",
    )
    c["speakers"] = gr.HTML(label=t(en, "speakers"), elem_id="sa-speakers", visible="hidden")
    c["summary"] = gr.Textbox(
        label=t(en, "summary"),
        lines=3,
        interactive=False,
        elem_id="sa-summary",
        visible="hidden",
    )
    c["files"] = gr.File(
        label=t(en, "downloads"),
        file_count="multiple",
        interactive=False,
        visible="hidden",
        elem_id="sa-files",
    )
    c["task_id"] = gr.Textbox(
        label=t(en, "task"), interactive=False, elem_id="sa-task", visible="hidden"
    )
