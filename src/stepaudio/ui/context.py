"""What the page's handlers share: the app they live in and how they reach its services."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI

from stepaudio.api.services import Services
from stepaudio.api.sessions import PageSessions
from stepaudio.ui.files import HandedOut
from stepaudio.ui.task_client import TaskClient


@dataclass
class UiContext:
    """The app the UI lives in; services are read when needed (they exist after startup)."""

    app: FastAPI
    handed: HandedOut
    """The files the page handed to each visitor: the only ones its handlers take."""
    sessions: PageSessions | None = None
    """The page's logins (None: a page built without them, keys in headers only)."""
    task_after_s: float = 600.0
    """Recordings longer than this run as tasks (the page ticks the box by itself)."""
    poll_s: float = 1.0
    downloads_keep_s: float = 24 * 3600
    _tasks: TaskClient | None = field(default=None, repr=False)

    @property
    def services(self) -> Services:
        return self.app.state.services

    @property
    def downloads_dir(self) -> Path:
        return self.services.settings.data_dir / "ui-downloads"

    @property
    def tasks(self) -> TaskClient:
        if self._tasks is None:
            self._tasks = TaskClient(self.app)
        return self._tasks
