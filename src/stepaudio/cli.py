"""The ``stepaudio`` command: serve, process files, inspect audio, plan capacity, bench."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from stepaudio.bench.bench_cli import register as register_bench
from stepaudio.bench.plan_cli import register as register_plan
from stepaudio.cli_voices import register as register_voices
from stepaudio.config import Settings
from stepaudio.errors import StepAudioError
from stepaudio.params import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODE,
    DEFAULT_QUESTION,
    DEFAULT_TARGET_LANG,
    Mode,
    ProcessParams,
)
from stepaudio.pipeline.formats import Format
from stepaudio.progress import progress_bar

app = typer.Typer(help="Transcribe, summarize, translate and question recordings of any length.")
err = Console(stderr=True)


def _fail(exc: StepAudioError) -> None:
    err.print(f"[red]error[/red] ({exc.code}): {exc.message}")
    raise typer.Exit(2)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Address to listen on (default: settings)"),
    port: int | None = typer.Option(None, help="Port to listen on (default: settings)"),
    wyoming_port: int | None = typer.Option(
        None, help="Serve Wyoming (Home Assistant) on this port too (default: live.wyoming_port)"
    ),
) -> None:
    """Run the HTTP service (API, OpenAI-compatible and realtime endpoints, web UI)."""
    import uvicorn

    from stepaudio.api import create_app
    from stepaudio.api.server import uvicorn_config

    settings = Settings()
    if wyoming_port is not None:
        settings = settings.updated(live_wyoming_port=wyoming_port)
    config = uvicorn_config(
        create_app(settings),
        settings,
        host or settings.host,
        port or settings.port,
        log_level="info",
    )
    uvicorn.Server(config).run()


@app.command()
def wyoming(
    port: int = typer.Option(10300, help="Wyoming port (Home Assistant's usual one)"),
) -> None:
    """Run the service with Wyoming on ``port`` (and the HTTP service as ``serve`` does)."""
    serve(host=None, port=None, wyoming_port=port)


@app.command()
def worker(
    count: int | None = typer.Option(
        None, "-n", "--workers", help="Workers in this process (default: task_workers, ≥ 1)"
    ),
) -> None:
    """Run task workers alone against the configured database, until SIGTERM or SIGINT."""
    from stepaudio.tasks import run_standalone

    settings = Settings()
    asyncio.run(run_standalone(settings, count or max(1, settings.tasks.workers)))


@app.command()
def process(
    audio: Path = typer.Argument(..., exists=True, dir_okay=False, help="The recording"),
    # Options left out are None: ProcessParams.from_user fills the defaults (shown in help).
    mode: Mode | None = typer.Option(
        None, "-m", "--mode", help="What to produce", show_default=DEFAULT_MODE.value
    ),
    question: str | None = typer.Option(
        None, "-q", "--question", help="For understand", show_default=DEFAULT_QUESTION
    ),
    instruction: str | None = typer.Option(None, "--instruction", help="For s2t, summarize"),
    target_lang: str | None = typer.Option(
        None, "--target-lang", help="For translate", show_default=DEFAULT_TARGET_LANG
    ),
    language: str | None = typer.Option(
        None, "--language", help="Spoken language: a code (en, zh, zh-TW) or a name (English, 中文)"
    ),
    parallel: int | None = typer.Option(None, "-p", "--parallel", help="Windows at once"),
    segment_duration: float | None = typer.Option(
        None, "--segment-duration", help="Window length in seconds (default: planned)"
    ),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", show_default=str(DEFAULT_MAX_TOKENS)
    ),
    thinking: bool | None = typer.Option(None, "--thinking/--no-thinking", show_default="thinking"),
    diarize: bool = typer.Option(False, "--diarize", help="Label who speaks (A, B, ...)"),
    speakers: int | None = typer.Option(None, "--speakers", help="Exact number of speakers"),
    min_speakers: int | None = typer.Option(None, "--min-speakers"),
    max_speakers: int | None = typer.Option(None, "--max-speakers"),
    word_timestamps: bool = typer.Option(
        False, "--word-timestamps", help="Times for every word (json output)"
    ),
    voices: str | None = typer.Option(
        None, "--voices", help="Known speakers to name (stepaudio voices list): NAMES or *"
    ),
    fmt: Format = typer.Option(Format.TXT, "-f", "--format", help="Output format"),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write here, not stdout"),
) -> None:
    """Process one file, any length (the seed's long_audio_processor.py)."""
    from stepaudio.engines.factory import build_engine
    from stepaudio.pipeline.formats import render
    from stepaudio.pipeline.run import Pipeline

    try:
        params = ProcessParams.from_user(
            mode=mode,
            question=question,
            instruction=instruction,
            target_lang=target_lang,
            language=language,
            parallel=parallel,
            segment_duration=segment_duration,
            max_tokens=max_tokens,
            thinking=thinking,
            diarize=diarize or None,
            num_speakers=speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
            word_timestamps=word_timestamps or None,
            voices=[v.strip() for v in voices.split(",") if v.strip()] if voices else None,
        )
    except ValueError as exc:
        err.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(2) from exc
    settings = Settings()
    if params.voices:
        from stepaudio.cli_voices import library_prints

        try:
            found = library_prints(settings, params.voices)
        except StepAudioError as exc:
            _fail(exc)
        params = params.model_copy(update={"voice_prints": found})

    async def run():
        engine = build_engine(settings)
        try:
            with progress_bar(err, transient=True) as bar:
                task = bar.add_task(f"{params.mode.value} {audio.name}", total=None)

                def on_progress(p) -> None:
                    bar.update(task, completed=p.done, total=p.total)

                return await Pipeline(engine, settings).process(
                    audio, params, on_progress=on_progress
                )
        finally:
            await engine.aclose()

    try:
        result = asyncio.run(run())
    except StepAudioError as exc:
        _fail(exc)
    for warning in result.warnings:
        err.print(f"[yellow]warning[/yellow]: {warning}")
    text = render(result, fmt)
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


@app.command()
def info(
    audio: Path = typer.Argument(..., exists=True, dir_okay=False),
    fmt: str = typer.Option("text", "-f", "--format", help="text or json"),
) -> None:
    """Show what a recording is and how much work it would be."""
    from stepaudio.audio import inspect
    from stepaudio.engines.factory import build_engine
    from stepaudio.pipeline.describe import audio_report

    settings = Settings()
    try:
        # The duration as counted, within max_audio_seconds (the API's /api/audio/info).
        meta = inspect(audio, settings.limits.max_audio_seconds)
    except StepAudioError as exc:
        _fail(exc)
    data = audio_report(meta, build_engine(settings))
    if fmt == "json":
        print(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            print(f"{key:>24}: {value}")


@app.command()
def settings() -> None:
    """Print every setting (environment variable, default, meaning) as a Markdown table."""
    from stepaudio.config_doc import settings_table

    print(settings_table())


# Commands that live with their features.
register_plan(app)
register_bench(app)
register_voices(app)

if __name__ == "__main__":
    app()
