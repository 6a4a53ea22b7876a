"""``POST /api/render?format=srt``: a result the caller already has, in another format.

The body is a result as ``/api/process`` and tasks return it (JSON); the answer is that
result as txt, srt, vtt, json, md or one of OpenAI's shapes, rendered by the same code as
every other face (``pipeline/formats.py``). The page's downloads use it, with the
speakers renamed as the visitor named them; nothing is stored.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from stepaudio.api.auth import caller
from stepaudio.errors import InvalidParameter
from stepaudio.pipeline.formats import Format, media_type, render
from stepaudio.pipeline.result import ProcessResult

router = APIRouter()


@router.post("/api/render", tags=["results"], response_class=Response)
async def render_result(
    result: ProcessResult,
    format: str = Query("txt", description=f"One of {', '.join(Format)}"),
    _who: str = Depends(caller),
) -> Response:
    """A result in ``format``."""
    try:
        fmt = Format(format)
    except ValueError:
        raise InvalidParameter(
            f"format must be one of {', '.join(Format)}.", param="format"
        ) from None
    return Response(render(result, fmt), media_type=media_type(fmt))
