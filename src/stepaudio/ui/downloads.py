"""A result as files the visitor's browser can save (kept a day, pruned as new ones come)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from stepaudio.pipeline.formats import Format, render
from stepaudio.pipeline.result import ProcessResult

DOWNLOAD_FORMATS = (Format.TXT, Format.SRT, Format.VTT, Format.JSON)


def write_downloads(root: Path, result: ProcessResult, keep_s: float) -> list[str]:
    """``result`` in each download format, in a fresh folder under ``root``; files older
    than ``keep_s`` are removed on the way."""
    root.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - keep_s
    for old in root.glob("*/*"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    folder = root / uuid.uuid4().hex
    folder.mkdir()
    paths = []
    for fmt in DOWNLOAD_FORMATS:
        path = folder / f"stepaudio-{result.mode.value}.{fmt.value}"
        path.write_text(render(result, fmt), encoding="utf-8")
        paths.append(str(path))
    return paths
