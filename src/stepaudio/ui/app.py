"""The web page: upload or record, pick a mode, watch the answer arrive.

``build_ui(app)`` lays out a ``gr.Blocks`` whose handlers (``handlers.py``) use the app's
services; ``mount_ui(app)`` puts it at ``/ui`` on the same FastAPI server, with the login
(``login.py``) and the confinement of Gradio's files (``files.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.routing import Mount

from stepaudio.config import Settings
from stepaudio.params import Mode
from stepaudio.ui import handlers as h
from stepaudio.ui.files import (
    CACHE_KEEP_S,
    CACHE_SWEEP_S,
    FileGate,
    FilePolicy,
    confine_components,
)
from stepaudio.ui.i18n import LANGUAGES, pick_language, t
from stepaudio.ui.login import login_router

UI_PATH = "/ui"
MODE_KEYS = {m.value: f"mode_{m.value}" for m in Mode}
MODE_TEMPERATURE = {Mode.ASR.value: 0.0, Mode.TRANSLATE.value: 0.1}
TARGET_LANGUAGES = ["Chinese", "English", "Japanese", "Korean", "French", "German", "Spanish"]

# The page keeps ``?task=<id>`` in its address so a reload or a shared link reopens the
# task; replaceState changes the address without reloading.
URL_JS = """(task) => {
  const url = new URL(window.location.href);
  if (task) { url.searchParams.set('task', task); } else { url.searchParams.delete('task'); }
  window.history.replaceState(null, '', url.toString());
  return task;
}"""

CSS = """
.sa-progress { display: flex; align-items: center; gap: .75em; min-height: 2em; }
.sa-progress progress { flex: 1; height: 1em; accent-color: var(--color-accent); }
.sa-progress[data-state=error] span { color: var(--error-text-color, #b91c1c); }
"""

# System fonts: the default theme pulls Google Fonts, which a machine without internet
# cannot reach (and the browser would log the failures).
THEME = gr.themes.Soft(
    font=["system-ui", "Segoe UI", "Noto Sans CJK SC", "sans-serif"],
    font_mono=["ui-monospace", "DejaVu Sans Mono", "monospace"],
)


def mode_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(lang, key), value) for value, key in MODE_KEYS.items()]


def logout_link(lang: str) -> str:
    return f'<a href="/logout" id="sa-logout">{t(lang, "logout")}</a>'


def _view_outputs(view: h.View) -> tuple[Any, ...]:
    """A ``View`` as the values of the result components (gr.skip() keeps a field)."""

    def keep(value: Any) -> Any:
        return gr.skip() if value is None else value

    def shown_if_set(value: Any) -> Any:
        # "hidden" (not False) keeps the element in the page, so its change events (the
        # address update for the task id) still run while it is out of sight.
        return (
            gr.skip() if value is None else gr.update(value=value, visible=bool(value) or "hidden")
        )

    return (
        view.progress,
        keep(view.answer),
        keep(view.thinking),
        keep(view.transcript),
        shown_if_set(view.summary),
        shown_if_set(view.files),
        shown_if_set(view.task_id),
    )


def build_ui(app: FastAPI, *, task_after_s: float = 600.0, poll_s: float = 1.0) -> gr.Blocks:
    """The page for ``app`` (a FastAPI app whose ``state.services`` exists once started)."""
    ctx = h.UiContext(app, task_after_s=task_after_s, poll_s=poll_s)
    en = "en"

    # Gradio sweeps what it cached (uploads, results) once a day after their last use.
    with gr.Blocks(
        title="Step-Audio", analytics_enabled=False, delete_cache=(CACHE_SWEEP_S, CACHE_KEEP_S)
    ) as demo:
        with gr.Row(equal_height=True):
            title = gr.Markdown(f"## {t(en, 'title')}", elem_id="sa-title")
            logout = gr.HTML(
                logout_link(en),
                visible=False,
                elem_id="sa-logout-box",
                scale=0,
                min_width=120,
            )
            lang = gr.Radio(
                [(name, code) for code, name in LANGUAGES.items()],
                value=en,
                label=t(en, "language"),
                elem_id="sa-lang",
                scale=0,
                min_width=220,
            )
        intro = gr.Markdown(t(en, "intro"))
        with gr.Tabs():
            with gr.Tab(t(en, "tab_process"), id="process") as tab_process, gr.Row():
                with gr.Column(scale=2):
                    audio = gr.Audio(
                        sources=["upload", "microphone"],
                        type="filepath",
                        label=t(en, "audio"),
                        elem_id="sa-audio",
                    )
                    info = gr.Markdown(elem_id="sa-info")
                    mode = gr.Radio(
                        mode_choices(en),
                        value=Mode.S2T.value,
                        label=t(en, "mode"),
                        elem_id="sa-mode",
                    )
                    question = gr.Textbox(
                        label=t(en, "question"), visible=False, elem_id="sa-question"
                    )
                    target = gr.Dropdown(
                        TARGET_LANGUAGES,
                        value="Chinese",
                        allow_custom_value=True,
                        label=t(en, "target_lang"),
                        visible=False,
                        elem_id="sa-target",
                    )
                    instruction = gr.Textbox(label=t(en, "instruction"), elem_id="sa-instr")
                    with gr.Accordion(t(en, "advanced"), open=False) as advanced:
                        max_tokens = gr.Slider(
                            64, 16384, value=2048, step=64, label=t(en, "max_tokens")
                        )
                        temperature = gr.Slider(
                            0, 2, value=0.7, step=0.05, label=t(en, "temperature")
                        )
                        thinking = gr.Checkbox(value=True, label=t(en, "thinking"))
                        segment = gr.Number(
                            value=0, minimum=0, label=t(en, "segment"), elem_id="sa-segment"
                        )
                        as_task = gr.Checkbox(
                            value=False, label=t(en, "as_task"), elem_id="sa-as-task"
                        )
                    run = gr.Button(t(en, "run"), variant="primary", elem_id="sa-run")
                with gr.Column(scale=3):
                    progress = gr.HTML(elem_id="sa-progress")
                    answer = gr.Textbox(
                        label=t(en, "answer"),
                        lines=6,
                        interactive=False,
                        buttons=["copy"],
                        elem_id="sa-answer",
                    )
                    with gr.Accordion(t(en, "thinking_box"), open=False) as reasoning:
                        thought = gr.Textbox(
                            show_label=False, lines=6, interactive=False, elem_id="sa-think"
                        )
                    transcript = gr.Textbox(
                        label=t(en, "transcript"),
                        lines=8,
                        max_lines=30,
                        interactive=False,
                        buttons=["copy"],
                        elem_id="sa-transcript",
                    )
                    summary = gr.Textbox(
                        label=t(en, "summary"),
                        lines=3,
                        interactive=False,
                        elem_id="sa-summary",
                        visible="hidden",
                    )
                    files = gr.File(
                        label=t(en, "downloads"),
                        file_count="multiple",
                        interactive=False,
                        visible="hidden",
                        elem_id="sa-files",
                    )
                    task_id = gr.Textbox(
                        label=t(en, "task"), interactive=False, elem_id="sa-task", visible="hidden"
                    )
            with gr.Tab(t(en, "tab_status"), id="status") as tab_status:
                status = gr.Markdown(elem_id="sa-status")
                refresh = gr.Button(t(en, "refresh"), size="sm")

        results = [progress, answer, thought, transcript, summary, files, task_id]
        form = [mode, question, target, instruction, max_tokens, temperature, thinking, segment]
        restored = [mode, question, target]

        async def describe(
            path: str | None, mode_v: str, segment_v: float, lang_v: str
        ) -> tuple[str, bool]:
            return await h.describe_audio(ctx, path, mode_v, segment_v, lang_v)

        async def process(
            path: str | None,
            mode_v: str,
            question_v: str,
            target_v: str,
            instruction_v: str,
            max_tokens_v: float,
            temperature_v: float,
            thinking_v: bool,
            segment_v: float,
            task_flag: bool,
            lang_v: str,
            request: gr.Request,
        ) -> AsyncIterator[tuple[Any, ...]]:
            if not path:
                yield _view_outputs(h.error_view(t(lang_v, "no_audio")))
                return
            who = h.visitor(ctx.services, request)
            if who.owner is None:
                yield _view_outputs(h.error_view(t(lang_v, "bad_key")))
                return
            try:
                params = h.build_params(
                    mode_v,
                    question_v,
                    target_v,
                    instruction_v,
                    max_tokens_v,
                    temperature_v,
                    thinking_v,
                    segment_v,
                )
            except ValueError as exc:
                yield _view_outputs(h.error_view(t(lang_v, "error", error=str(exc))))
                return
            if task_flag:
                views = h.submit_task(ctx, Path(path), params, who.key, lang_v)
            else:
                views = h.run_inline(ctx, Path(path), params, lang_v)
            async for view in views:
                yield _view_outputs(view)

        async def opened(request: gr.Request) -> tuple[Any, ...]:
            query = dict(request.query_params) if request else {}
            headers = dict(request.headers) if request else {}
            chosen = pick_language(headers.get("accept-language"), query.get("lang"))
            keys_needed = bool(ctx.services.settings.api_keys)
            return (
                chosen,
                query.get("task", ""),
                gr.update(value=logout_link(chosen), visible=keys_needed),
            )

        async def resume(
            task: str, lang_v: str, request: gr.Request
        ) -> AsyncIterator[tuple[Any, ...]]:
            """Reopen the task named in the address: its form, its progress, its result.

            Read with the visitor's own key: another key's task is "not found"."""
            if not task:
                yield tuple(gr.skip() for _ in [*results, *restored])
                return
            who = h.visitor(ctx.services, request)
            async for view in h.follow_task(ctx, task, who.key, lang_v):
                p = view.params or {}
                form_values = tuple(
                    p[k] if p.get(k) else gr.skip() for k in ("mode", "question", "target_lang")
                )
                yield _view_outputs(view) + form_values

        def mode_changed(mode_v: str) -> tuple[Any, ...]:
            return (
                gr.update(visible=mode_v == Mode.UNDERSTAND.value),
                gr.update(visible=mode_v == Mode.TRANSLATE.value),
                gr.update(visible=mode_v in (Mode.S2T.value, Mode.SUMMARIZE.value)),
                MODE_TEMPERATURE.get(mode_v, 0.7),
            )

        async def relabel(lang_v: str) -> tuple[Any, ...]:
            def label(key: str) -> Any:
                return gr.update(label=t(lang_v, key))

            return (
                f"## {t(lang_v, 'title')}",
                logout_link(lang_v),
                t(lang_v, "intro"),
                label("language"),
                label("tab_process"),
                label("tab_status"),
                label("audio"),
                gr.update(choices=mode_choices(lang_v), label=t(lang_v, "mode")),
                label("question"),
                label("target_lang"),
                label("instruction"),
                label("advanced"),
                label("max_tokens"),
                label("temperature"),
                label("thinking"),
                label("segment"),
                label("as_task"),
                gr.update(value=t(lang_v, "run")),
                label("answer"),
                label("thinking_box"),
                label("transcript"),
                label("summary"),
                label("downloads"),
                label("task"),
                gr.update(value=t(lang_v, "refresh")),
                await h.status_markdown(ctx, lang_v),
            )

        async def show_status(lang_v: str) -> str:
            return await h.status_markdown(ctx, lang_v)

        labelled = [
            title,
            logout,
            intro,
            lang,
            tab_process,
            tab_status,
            audio,
            mode,
            question,
            target,
            instruction,
            advanced,
            max_tokens,
            temperature,
            thinking,
            segment,
            as_task,
            run,
            answer,
            reasoning,
            transcript,
            summary,
            files,
            task_id,
            refresh,
            status,
        ]
        info_inputs = [audio, mode, segment, lang]
        audio.change(describe, info_inputs, [info, as_task], concurrency_limit=None)
        segment.change(describe, info_inputs, [info, as_task], concurrency_limit=None)
        mode.change(mode_changed, mode, [question, target, instruction, temperature]).then(
            describe, info_inputs, [info, as_task], concurrency_limit=None
        )
        lang.change(relabel, lang, labelled, concurrency_limit=None)
        # Our own admission control (queue, 429) limits work, not Gradio's per-event queue.
        run.click(process, [audio, *form, as_task, lang], results, concurrency_limit=None)
        task_id.change(None, task_id, None, js=URL_JS)
        refresh.click(show_status, lang, status, concurrency_limit=None)
        demo.load(opened, None, [lang, task_id, logout]).then(
            resume, [task_id, lang], [*results, *restored], concurrency_limit=None
        ).then(show_status, lang, status)
    return demo


def mount_ui(app: FastAPI, settings: Settings) -> FastAPI:
    """Serve the page at ``/ui`` of ``app`` (Gradio's assets come from the installed package),
    its login at ``/login``, and keep Gradio to the page's own files (see ``files.py``)."""
    demo = build_ui(app)
    policy = FilePolicy.for_data_dir(settings.data_dir)
    confine_components(demo, policy)
    app.include_router(login_router(settings))

    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> RedirectResponse:
        query = request.url.query
        return RedirectResponse(f"{UI_PATH}/" + (f"?{query}" if query else ""))

    gr.mount_gradio_app(
        app,
        demo,
        path=UI_PATH,
        theme=THEME,
        css=CSS,
        allowed_paths=[str(policy.downloads_dir)],
        blocked_paths=policy.blocked_paths(settings.data_dir),
        max_file_size=settings.max_upload_bytes,
        ssr_mode=False,
        # Gradio's own API page and run history would compete with our /docs and tasks;
        # its settings (theme, language of its built-in texts) stay.
        footer_links=["settings"],
        run_history=False,
    )
    mount = next(r for r in reversed(app.routes) if isinstance(r, Mount) and r.path == UI_PATH)
    # Uploads land in our cache, not in the process-wide GRADIO_TEMP_DIR (or /tmp/gradio).
    mount.app.uploaded_file_dir = str(policy.cache_dir)  # type: ignore[union-attr]
    mount.app = FileGate(mount.app, policy)
    # What launch() would set: heartbeats on the page's event streams, and no promotion of
    # named SVG files to static paths (Gradio does that only for apps not yet running).
    demo.is_running = True
    _clear_cache_around(app, policy)
    return app


def _clear_cache_around(app: FastAPI, policy: FilePolicy) -> None:
    """Empty the page's cache when the app starts and when it stops (after a crash too)."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        await anyio.to_thread.run_sync(policy.clear_cache)
        try:
            async with inner(a) as state:
                yield state
        finally:
            await anyio.to_thread.run_sync(policy.clear_cache)

    app.router.lifespan_context = lifespan
