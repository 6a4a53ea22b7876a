"""The page's status tab: the service's engine, backends and their health, and the queue."""

from __future__ import annotations

from html import escape

from stepaudio.errors import StepAudioError
from stepaudio.ui.context import UiContext
from stepaudio.ui.i18n import t


async def status_markdown(ctx: UiContext, lang: str) -> str:
    """Engine, backends and their health, and the queue, as a small report."""
    services = ctx.services
    try:
        health = await services.engine.health()
    except StepAudioError as exc:
        health = {"engine": services.engine.name, "ready": False, "error": exc.message}
    yes, no = t(lang, "st_yes"), t(lang, "st_no")
    lines = [
        f"### {t(lang, 'st_engine')}: `{health.get('engine', services.engine.name)}`",
        f"- {t(lang, 'st_ready')}: **{yes if health.get('ready') else no}**",
    ]
    for k in ("whisper_model", "text_model", "capacity", "error"):
        if k in health:
            lines.append(f"- {k}: `{health[k]}`")
    lines += ["", f"### {t(lang, 'st_backends')}"]
    backends = health.get("backends") or []
    if not backends:
        lines.append(t(lang, "st_none"))
    else:
        lines += [
            "| URL | model | state | in flight | capacity | latency ms | last error |",
            "|---|---|---|---|---|---|---|",
        ]
        for b in backends:
            state = t(lang, "st_healthy") if b.get("healthy") else t(lang, "st_down")
            lines.append(
                f"| {b.get('url')} | {b.get('model')} | {state} | {b.get('in_flight', '')} | "
                f"{b.get('capacity', '')} | {b.get('latency_ms') or ''} | "
                f"{escape(str(b.get('last_error') or ''))} |"
            )
    stats = services.stats
    lines += [
        "",
        f"### {t(lang, 'st_queue')}",
        f"- {t(lang, 'st_processing')}: **{stats.processing}** · "
        f"{t(lang, 'st_waiting')}: **{stats.waiting}** · "
        f"{t(lang, 'st_completed')}: **{stats.completed}**",
        f"- {t(lang, 'st_total_time')}: {stats.total_time:.1f} s",
    ]
    return "\n".join(lines)
