"""A model's output as the JSON the task database keeps (finished windows)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from stepaudio.engines.base import ModelOutput, Segment, Usage


def output_to_json(output: ModelOutput) -> dict[str, Any]:
    return asdict(output)


def output_from_json(data: dict[str, Any]) -> ModelOutput:
    return ModelOutput(
        text=data["text"],
        thinking=data.get("thinking", ""),
        segments=[Segment(**s) for s in data.get("segments", [])],
        language=data.get("language"),
        usage=Usage(**data.get("usage", {})),
        truncated=data.get("truncated", False),
        backend=data.get("backend"),
        source=data.get("source"),
    )
