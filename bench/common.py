"""Shared pieces of the benchmarks: long inputs built from the real clips, measured
subprocesses, machine description and rich tables."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
# Generated inputs live here (gitignored): an hour of mp3 takes a while to encode.
OUT = ROOT / "bench" / "out"


def clips(lang: str = "en") -> list[Path]:
    """The real recordings of one language in tests/data, in the manifest's order."""
    entries = json.loads((DATA / "manifest.json").read_text())
    return [DATA / e["file"] for e in entries if e["lang"] == lang]


def long_recording(minutes: float, fmt: str = "mp3", lang: str = "en") -> Path:
    """A recording of at least ``minutes`` built from the real clips, cached in bench/out."""
    from stepaudio.testing.encode import write_audio
    from stepaudio.testing.longaudio import build

    path = OUT / f"long-{lang}-{minutes:g}min.{fmt}"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    pcm, _ = build(clips(lang), minutes * 60)
    # Write under a temporary name so an interrupted run never leaves a short file cached.
    partial = path.with_name(path.stem + ".partial." + fmt)
    write_audio(pcm[: int(minutes * 60 * 16000)], partial, fmt)
    partial.replace(path)
    return path


@dataclass
class Measured:
    wall_s: float
    peak_rss_mb: float
    returncode: int
    stdout: bytes


def run_measured(cmd: Sequence[str], stdout_path: Path | None = None) -> Measured:
    """Run ``cmd`` to completion; its wall time and its own peak RSS.

    The child runs under ``/usr/bin/time -f %M``: the kernel's ru_maxrss of a child forked
    straight from this (large) Python process starts at this process's RSS, since it
    survives the exec, whereas time itself is small.
    """
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "maxrss"
        full = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *cmd]
        out = open(stdout_path, "wb") if stdout_path else subprocess.PIPE  # noqa: SIM115
        start = time.perf_counter()
        try:
            proc = subprocess.run(full, stdout=out, stderr=subprocess.PIPE, check=False)
        finally:
            if stdout_path:
                out.close()
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-2000:]!r}")
        # %M is in KiB; the last line, in case the command wrote there too.
        kib = int(rss_file.read_text().split()[-1])
    return Measured(wall, kib / 1024, proc.returncode, proc.stdout or b"")


def python_child(code: str) -> list[str]:
    """A fresh interpreter of this venv running ``code``."""
    return [sys.executable, "-c", code]


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{psutil.cpu_count(logical=True)} cores, {mem:.0f} GiB, "
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}"
    )


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    t = Table(title=title)
    for i, col in enumerate(columns):
        t.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        t.add_row(*(str(c) for c in row))
    return t


def markdown(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The same table as Markdown, to paste into docs/benchmarks.md."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def show(console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
    console.print(table(title, columns, rows))
    # Plain print: rich would wrap the Markdown lines at the terminal's width.
    print(markdown(columns, rows), flush=True)


def process_events(url: str, path: Path, data: dict[str, str]) -> Iterator[tuple[float, dict]]:
    """``POST /api/process`` with ``stream=true``: each event as it arrives, with the
    seconds since the request; an ``error`` event raises."""
    start = time.perf_counter()
    with (
        httpx.Client(base_url=url, timeout=3600) as client,
        open(path, "rb") as f,
        client.stream(
            "POST",
            "/api/process",
            files={"audio": (path.name, f, "audio/mpeg")},
            data={**data, "stream": "true"},
        ) as resp,
    ):
        resp.raise_for_status()
        for line in resp.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event["type"] == "error":
                    raise RuntimeError(f"stream failed: {event}")
                yield time.perf_counter() - start, event
