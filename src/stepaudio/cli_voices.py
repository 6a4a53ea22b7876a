"""``stepaudio voices``: the voice library from the command line (the keyless owner's, the
one a service without keys uses on the same database), and ``process --voices``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from stepaudio.config import Settings
from stepaudio.errors import StepAudioError
from stepaudio.params import speaker_name

# The task database's modules are imported by the commands that use them: the CLI starts
# without SQLAlchemy and the store.
ANONYMOUS = "anonymous"
"""The keyless owner (``service.lifecycle.ANONYMOUS``): the CLI's library is the one a
service without keys uses on the same database."""

err = Console(stderr=True)


def _failed(exc: StepAudioError) -> typer.Exit:
    err.print(f"[red]error[/red] ({exc.code}): {exc.message}")
    return typer.Exit(2)


def library_prints(settings: Settings, names: list[str]) -> dict[str, list[float]]:
    """The prints of ``names`` (``*``: all) for ``process --voices``."""
    from stepaudio.tasks import voices
    from stepaudio.tasks.store import TaskStore

    store = TaskStore.open(settings)
    try:
        found = voices.prints(store, ANONYMOUS, names)
    finally:
        store.close()
    return {name: [float(x) for x in vector] for name, vector in found.items()}


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Known speakers: voice prints (never audio) named in transcripts.")
    app.add_typer(group, name="voices")

    @group.command("list")
    def list_voices() -> None:
        """The voices in the library."""
        from stepaudio.tasks import voices
        from stepaudio.tasks.store import TaskStore

        store = TaskStore.open(Settings())
        try:
            found = voices.listed(store, ANONYMOUS)
        finally:
            store.close()
        table = Table("name", "speech s", "enrolled (UTC)", "id")
        for v in found:
            table.add_row(v.name, f"{v.seconds:.1f}", f"{v.created_at:%Y-%m-%d %H:%M}", v.voice_id)
        Console().print(table)

    @group.command("add")
    def add(
        name: str = typer.Argument(..., help="Who speaks in the sample"),
        sample: Path = typer.Argument(..., exists=True, dir_okay=False, help="5-30 s of them"),
    ) -> None:
        """Enrol a voice from a sample of one person talking (its print is kept, not it)."""
        from stepaudio.pipeline.speakers import Speakers
        from stepaudio.tasks import voices
        from stepaudio.tasks.store import TaskStore

        try:
            name = speaker_name(name)
        except ValueError as exc:
            err.print(f"[red]error[/red]: {exc}")
            raise typer.Exit(2) from exc
        settings = Settings()
        try:
            vector, seconds = asyncio.run(Speakers().voice_print(sample, "sample"))
            store = TaskStore.open(settings)
            try:
                voices.enrol(store, ANONYMOUS, name, vector, seconds)
            finally:
                store.close()
        except StepAudioError as exc:
            raise _failed(exc) from exc
        err.print(f"enrolled {name} ({seconds:.1f} s of speech)")

    @group.command("remove")
    def remove(name: str = typer.Argument(..., help="The voice's name")) -> None:
        """Delete a voice print for good."""
        from stepaudio.tasks import voices
        from stepaudio.tasks.store import TaskStore

        store = TaskStore.open(Settings())
        try:
            found = {v.name: v for v in voices.listed(store, ANONYMOUS)}
            if name not in found:
                err.print(f"[red]error[/red]: no voice named {name!r}")
                raise typer.Exit(2)
            voices.remove(store, ANONYMOUS, found[name].voice_id)
        finally:
            store.close()
        err.print(f"removed {name}")
