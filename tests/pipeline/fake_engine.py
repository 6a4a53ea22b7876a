"""A text-only engine whose "model" is a plain Python function, for unit tests.

It keeps every prompt it was sent, so a test can check what the pipeline asked for, and
answers each with ``answer(prompt)``. No server, no model: milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stepaudio.engines.base import ModelOutput, TextJob, Usage, WindowJob
from stepaudio.params import Mode, ProcessParams


@dataclass
class FakeTextEngine:
    answer: Callable[[str], str]
    budget: int = 10_000
    modes: frozenset[Mode] = frozenset()
    """Modes it claims to run on audio (empty: everything goes through a transcript)."""
    name: str = "fake"
    prompts: list[str] = field(default_factory=list)

    def audio_modes(self) -> frozenset[Mode]:
        return self.modes

    def max_window_seconds(self, mode: Mode, params: ProcessParams) -> float:
        return 30.0

    def capacity(self) -> int:
        return 1

    def text_budget_chars(self) -> int:
        return self.budget

    async def run_window(self, job: WindowJob) -> ModelOutput:
        raise AssertionError("a unit test of text steps must not run audio windows")

    async def complete(self, job: TextJob) -> ModelOutput:
        self.prompts.append(job.prompt)
        text = self.answer(job.prompt)
        return ModelOutput(text, usage=Usage(prompt_tokens=len(job.prompt), completion_tokens=1))

    async def health(self) -> dict[str, Any]:
        return {"ready": True}

    async def aclose(self) -> None:
        return None
