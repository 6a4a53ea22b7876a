"""``POST /api/process`` as server-sent events, for callers that show text as it comes.

Asked for with the form field ``stream=true`` or ``Accept: text/event-stream``. Events,
each ``event: NAME`` with a JSON ``data:`` line that repeats the name as ``type``:

- ``progress``: ``{"done", "total"}`` windows, first when the plan is made;
- ``heard``: a piece of a window's text as soon as it is decoded (the embedded engine
  decodes speech chunk by chunk, the first alone: text within seconds of the request,
  whatever the window's length), in audio order: ``{"index", "start", "end", "text",
  "segments"}`` (``start``/``end``: the piece's); what was heard, also in ``translate``
  (the source) and the text modes (the transcript they are made from);
- ``window``: one window's text, in audio order, as soon as it and every window before
  it are done: ``{"index", "start", "end", "text", "segments"}`` (times in the
  recording's seconds, as in the result); it replaces the window's ``heard`` pieces
  (and is the translation, in ``translate``);
- ``result``: the whole result, the same JSON as the plain response (the summary or
  answer of text modes comes only here);
- ``error``: the error body of a plain response, when the work fails after the stream
  began (bad input and a full queue are refused before, with their status).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request

from stepaudio.api.errors import error_body
from stepaudio.audio.cut import Span
from stepaudio.engines.base import ModelOutput
from stepaudio.errors import StepAudioError
from stepaudio.pipeline.result import ProcessResult
from stepaudio.service import Run

MEDIA_TYPE = "text/event-stream"


def wants_stream(request: Request, stream: bool | None) -> bool:
    """The form's ``stream`` decides when given; else the ``Accept`` header."""
    if stream is not None:
        return stream
    return MEDIA_TYPE in request.headers.get("accept", "")


def event(name: str, data: dict[str, Any]) -> str:
    body = json.dumps({"type": name, **data}, ensure_ascii=False)
    return f"event: {name}\ndata: {body}\n\n"


def window_event(index: int, span: Span, output: ModelOutput) -> dict[str, Any]:
    return {
        "index": index,
        "start": round(span.start, 3),
        "end": round(span.end, 3),
        "text": output.text,
        "segments": [
            {
                "start": round(span.start + s.start, 3),
                "end": round(span.start + s.end, 3),
                "text": s.text,
            }
            for s in output.segments
        ],
    }


def heard_event(index: int, span: Span, piece: ModelOutput) -> dict[str, Any]:
    """A piece of window ``index``: its own times, the window's shape otherwise."""
    body = window_event(index, span, piece)
    if body["segments"]:
        body["start"], body["end"] = body["segments"][0]["start"], body["segments"][-1]["end"]
    return body


async def streamed(run: Run) -> AsyncIterator[str]:
    """The events of one run (``Services.stream`` holds its upload and place in the
    queue, and turns a failure into ``error_event``)."""
    async for item in run.events():
        if isinstance(item, ProcessResult):
            yield event("result", item.model_dump(mode="json"))
        elif item.heard and item.output is not None and item.span and item.index is not None:
            yield event("heard", heard_event(item.index, item.span, item.output))
        elif item.output is not None and item.span and item.index is not None:
            yield event("window", window_event(item.index, item.span, item.output))
        else:
            yield event("progress", {"done": item.done, "total": item.total})


def error_event(error: StepAudioError) -> str:
    return event("error", error_body("/api/process", error.to_dict()))
