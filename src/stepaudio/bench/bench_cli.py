"""`stepaudio bench`: the benchmark's command line (register it with ``register``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from stepaudio.bench.inputs import joined_clips, parse_durations, parse_ints
from stepaudio.bench.runner import BenchConfig
from stepaudio.progress import progress_bar

EXIT_USAGE = 2
# Where a source checkout keeps its English test clips (tests/data/SOURCES.txt).
DEFAULT_CLIPS = Path("tests/data/en")


def bench_command(
    url: Annotated[
        str | None,
        typer.Option(help="A running service (http://host:port). Default: start one here."),
    ] = None,
    audio: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Recording to cut or loop to each duration. Default: the clips of --clips joined.",
        ),
    ] = None,
    clips: Annotated[
        Path,
        typer.Option(
            file_okay=False,
            help="Without --audio: a folder of short recordings (wav, flac, mp3) to join "
            "into the source. The default is relative to the current folder: a source "
            "checkout's English test clips, when run from its root.",
        ),
    ] = DEFAULT_CLIPS,
    durations: Annotated[
        str,
        typer.Option(help="Comma-separated; minutes, or with a unit: 30s, 1.5m, 1h."),
    ] = "10,30,60",
    modes: Annotated[
        str, typer.Option(help="Comma-separated: s2t, asr, understand, translate, summarize.")
    ] = "s2t",
    concurrency: Annotated[
        str, typer.Option(help="Comma-separated numbers of requests sent at once.")
    ] = "1,2,4",
    out: Annotated[
        Path, typer.Option(help="Where BENCHMARK.md, the plots and results.json go.")
    ] = Path("bench-results"),
    segment_duration: Annotated[
        float | None, typer.Option(help="Window length in seconds (default: planned).")
    ] = None,
    language: Annotated[
        str | None, typer.Option(help="Spoken language code (default: detected).")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="STEPAUDIO_BENCH_API_KEY", help="For --url.")
    ] = None,
    warmup: Annotated[
        bool, typer.Option(help="Send one short request first so model loading is not timed.")
    ] = True,
    sample_interval: Annotated[float, typer.Option(help="Seconds between RSS/GPU samples.")] = 0.5,
) -> None:
    """Time the service on recordings of given lengths, modes and concurrency levels;
    write BENCHMARK.md (the seed's tables), PNG plots and the raw JSON."""
    from stepaudio.bench.report import write_report
    from stepaudio.bench.runner import run_bench
    from stepaudio.params import Mode

    err = Console(stderr=True)
    try:
        mode_list = [Mode(m.strip()).value for m in modes.split(",") if m.strip()]
        cfg = BenchConfig(
            durations_s=parse_durations(durations),
            modes=mode_list,
            concurrency=sorted(set(parse_ints(concurrency, "concurrency level"))),
            url=url,
            segment_duration=segment_duration,
            language=language,
            api_key=api_key,
            warmup=warmup,
            sample_interval_s=sample_interval,
        )
        if not mode_list:
            raise ValueError("no modes given")
    except ValueError as exc:
        err.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(EXIT_USAGE) from exc

    work = out / "inputs"
    source = audio or joined_clips(clips, work)
    if source is None:
        err.print(f"[red]error[/red]: no recordings in {clips}; pass --audio FILE or --clips DIR")
        raise typer.Exit(EXIT_USAGE)

    with progress_bar(err) as bar:
        task = bar.add_task("preparing inputs", total=None)

        def on_progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total or None, description=what)

        result = run_bench(source, cfg, work, progress=on_progress)
    files = write_report(result, out)
    ok = sum(r["ok"] for r in result["requests"])
    err.print(
        f"{ok}/{len(result['requests'])} requests succeeded; wrote {files.markdown}, "
        f"{files.json} and {len(files.plots)} plots"
    )
    if ok < len(result["requests"]):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the command to the main CLI as `stepaudio bench`."""
    app.command("bench")(bench_command)
