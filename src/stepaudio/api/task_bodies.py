"""The task routes' response bodies. A task itself is ``TaskView``/``TaskSummary``
(``tasks/task_view.py``: webhook deliveries carry the same view)."""

from __future__ import annotations

from pydantic import BaseModel

from stepaudio.tasks.status import TaskStatus
from stepaudio.tasks.task_view import TaskSummary, TaskView

__all__ = ["TaskAccepted", "TaskList", "TaskSummary", "TaskView"]


class TaskAccepted(BaseModel):
    """``POST /api/task``'s 202: the task to poll (also in ``Location``)."""

    task_id: str
    status: TaskStatus


class TaskList(BaseModel):
    """``GET /api/tasks``: one page of the caller's tasks, newest first, without results."""

    tasks: list[TaskSummary]
    count: int
    """Tasks on this page."""
    limit: int
    offset: int
