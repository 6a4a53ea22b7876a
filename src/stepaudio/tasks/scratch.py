"""Scratch files a crash leaves behind in ``data_dir``: uploads being received
(``uploads/``), decoded audio and task sources (``tmp/``).

Several processes (gateways, workers) may share the directories, and a live one's file
looks like a dead one's; the only safe sign of a leftover is age. Files untouched for
``scratch_max_age_hours`` (far longer than any request runs) are removed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)


def clean_scratch(directories: Iterable[Path], max_age_s: float) -> int:
    """Remove regular files older than ``max_age_s`` in ``directories`` (not below them);
    returns how many went."""
    cutoff = time.time() - max_age_s
    removed = 0
    for directory in directories:
        try:
            entries = list(directory.iterdir())
        except FileNotFoundError:
            continue
        for path in entries:
            try:
                stat = path.lstat()
                if path.is_file() and not path.is_symlink() and stat.st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # another process cleaned it first
    if removed:
        log.info("removed %d leftover scratch files", removed)
    return removed
