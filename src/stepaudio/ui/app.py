"""The web page: upload or record, pick a mode, watch the answer arrive.

``build_ui(app)`` lays out the page (``layout.py``) and wires its controls to handlers
that use the app's services (``handlers.py``, ``tasks.py``, ``status.py``);
``mount_ui(app)`` puts it at ``/ui`` on the same FastAPI server, with the login
(``login.py``) and the confinement of Gradio's files (``files.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.routing import Mount

from stepaudio.api.sessions import PageSessions
from stepaudio.config import Settings
from stepaudio.params import Mode
from stepaudio.ui import handlers as h
from stepaudio.ui.context import UiContext
from stepaudio.ui.files import (
    CACHE_KEEP_S,
    CACHE_SWEEP_S,
    FileGate,
    FilePolicy,
    HandedOut,
    confine_components,
)
from stepaudio.ui.i18n import pick_language, t
from stepaudio.ui.layout import FORM, RESTORED, RESULTS, lay_out, logout_link
from stepaudio.ui.login import login_router
from stepaudio.ui.service_status import status_markdown
from stepaudio.ui.tasks import follow_task, submit_task
from stepaudio.ui.views import View, error_view

UI_PATH = "/ui"

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


def view_outputs(view: View) -> tuple[Any, ...]:
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
        shown_if_set(view.speakers),
    )


def build_ui(
    app: FastAPI,
    handed: HandedOut,
    sessions: PageSessions | None = None,
    *,
    task_after_s: float = 600.0,
    poll_s: float = 1.0,
) -> gr.Blocks:
    """The page for ``app`` (a FastAPI app whose ``state.services`` exists once started);
    its handlers take only the files ``handed`` says the page gave the visitor."""
    ctx = UiContext(app, handed, sessions, task_after_s=task_after_s, poll_s=poll_s)

    # Gradio sweeps what it cached (uploads, results) once a day after their last use.
    with gr.Blocks(
        title="Step-Audio", analytics_enabled=False, delete_cache=(CACHE_SWEEP_S, CACHE_KEEP_S)
    ) as demo:
        page = lay_out()
        results, form, restored = page.all(*RESULTS), page.all(*FORM), page.all(*RESTORED)

        async def describe(
            path: str | None, mode_v: str, segment_v: float, lang_v: str, request: gr.Request
        ) -> tuple[str, bool]:
            who = await h.visitor(ctx.services, ctx.sessions, request)
            return await h.describe_audio(ctx, who, path, mode_v, segment_v, lang_v)

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
            diarize_v: bool,
            task_flag: bool,
            lang_v: str,
            request: gr.Request,
        ) -> AsyncIterator[tuple[Any, ...]]:
            if not path:
                yield view_outputs(error_view(t(lang_v, "no_audio")))
                return
            who = await h.visitor(ctx.services, ctx.sessions, request)
            if who.owner is None:
                yield view_outputs(error_view(t(lang_v, "bad_key")))
                return
            if not ctx.handed.owns(who.owner, path):
                yield view_outputs(error_view(t(lang_v, "not_handed_out")))
                return
            try:
                params = h.form_params(
                    mode=mode_v,
                    question=question_v,
                    target_lang=target_v,
                    instruction=instruction_v,
                    max_tokens=int(max_tokens_v),
                    temperature=float(temperature_v),
                    thinking=bool(thinking_v),
                    segment_duration=segment_v,
                    diarize=bool(diarize_v),
                )
            except ValueError as exc:
                yield view_outputs(error_view(t(lang_v, "error", error=str(exc))))
                return
            source = ctx.handed.check(who.owner, path)
            if task_flag:
                views = submit_task(ctx, source, params, who.credentials, lang_v)
            else:
                views = h.run_inline(ctx, who, source, params, lang_v)
            async for view in views:
                yield view_outputs(view)

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
            who = await h.visitor(ctx.services, ctx.sessions, request)
            async for view in follow_task(ctx, task, who.credentials, lang_v):
                p = view.params or {}
                form_values = tuple(
                    p[k] if p.get(k) else gr.skip() for k in ("mode", "question", "target_lang")
                )
                yield view_outputs(view) + form_values

        def mode_changed(mode_v: str) -> tuple[Any, ...]:
            return (
                gr.update(visible=mode_v == Mode.UNDERSTAND.value),
                gr.update(visible=mode_v == Mode.TRANSLATE.value),
                gr.update(visible=mode_v in (Mode.S2T.value, Mode.SUMMARIZE.value)),
                Mode(mode_v).default_temperature,
            )

        async def relabel(lang_v: str) -> tuple[Any, ...]:
            texts = tuple(redo(lang_v) for _, redo in page.relabels)
            return (*texts, await status_markdown(ctx, lang_v))

        async def show_status(lang_v: str) -> str:
            return await status_markdown(ctx, lang_v)

        audio, mode, segment, lang = page.all("audio", "mode", "segment", "lang")
        info, as_task, task_id, status = page.all("info", "as_task", "task_id", "status")
        info_inputs = [audio, mode, segment, lang]
        audio.change(describe, info_inputs, [info, as_task], concurrency_limit=None)
        segment.change(describe, info_inputs, [info, as_task], concurrency_limit=None)
        mode.change(
            mode_changed, mode, page.all("question", "target", "instruction", "temperature")
        ).then(describe, info_inputs, [info, as_task], concurrency_limit=None)
        labelled = [component for component, _ in page.relabels] + [status]
        lang.change(relabel, lang, labelled, concurrency_limit=None)
        # Our own admission control (queue, 429) limits work, not Gradio's per-event queue.
        page["run"].click(process, [audio, *form, as_task, lang], results, concurrency_limit=None)
        task_id.change(None, task_id, None, js=URL_JS)
        page["refresh"].click(show_status, lang, status, concurrency_limit=None)
        demo.load(opened, None, [lang, task_id, page["logout"]]).then(
            resume, [task_id, lang], [*results, *restored], concurrency_limit=None
        ).then(show_status, lang, status)
    return demo


def mount_ui(app: FastAPI, settings: Settings, sessions: PageSessions) -> FastAPI:
    """Serve the page at ``/ui`` of ``app`` (Gradio's assets come from the installed package),
    its login at ``/login``, and keep Gradio to the page's own files (see ``files.py``)."""
    handed = HandedOut()
    demo = build_ui(app, handed, sessions)
    policy = FilePolicy.for_data_dir(settings.data_dir)
    confine_components(demo, policy, handed)
    app.include_router(login_router(settings, sessions))

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
        max_file_size=settings.limits.max_upload_bytes,
        ssr_mode=False,
        # Gradio's own API page and run history would compete with our /docs and tasks;
        # its settings (theme, language of its built-in texts) stay.
        footer_links=["settings"],
        run_history=False,
    )
    mount = next(r for r in reversed(app.routes) if isinstance(r, Mount) and r.path == UI_PATH)
    # Uploads land in our cache, not in the process-wide GRADIO_TEMP_DIR (or /tmp/gradio).
    # Mount.app is typed as any ASGI app; this one is Gradio's App, which has the attribute.
    mount.app.uploaded_file_dir = str(policy.cache_dir)  # type: ignore[attr-defined]
    mount.app = FileGate(mount.app, policy, handed)
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
