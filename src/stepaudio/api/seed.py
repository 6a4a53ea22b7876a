"""The seed's endpoints (docs/seed.md: same paths, fields, keys and statuses), plus ours
beside them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stepaudio.api.auth import caller
from stepaudio.api.forms import process_params
from stepaudio.api.process_stream import error_event, streamed, wants_stream
from stepaudio.api.services import Services, get_services, model_label
from stepaudio.engines.factory import engine_kind
from stepaudio.engines.http import public_url
from stepaudio.params import ProcessParams
from stepaudio.pipeline.describe import audio_report
from stepaudio.pipeline.result import ProcessResult

router = APIRouter()


@router.post("/api/process", response_model=ProcessResult, tags=["seed"])
async def process(
    request: Request,
    audio: UploadFile = File(..., description="The recording (any common audio format)"),
    params: ProcessParams = Depends(process_params),
    stream: bool | None = Form(
        None,
        description="Server-sent events: each window's text as soon as it is done, in audio "
        "order, then the result (also with Accept: text/event-stream)",
    ),
    services: Services = Depends(get_services),
    _who: str = Depends(caller),
) -> ProcessResult | Response:
    """Process a recording synchronously and return the result (or stream it)."""
    if wants_stream(request, stream):
        return await services.stream(
            request, audio, params, face="seed", body=streamed, on_error=error_event
        )
    return await services.process(request, audio, params, face="seed")


@router.post("/api/audio/info", tags=["seed"])
async def audio_info(
    audio: UploadFile = File(...),
    services: Services = Depends(get_services),
    _who: str = Depends(caller),
) -> dict[str, Any]:
    """What the recording is and what processing it would take, without processing it."""
    async with services.stored(audio) as up:
        info = await services.pipeline.probe(up.path)
    return audio_report(info, services.engine)


@router.get("/api/status", tags=["seed"])
async def status(services: Services = Depends(get_services)) -> dict[str, Any]:
    """The seed's counters, plus the engine and its backends."""
    settings = services.settings
    backends = settings.all_backends()
    stats = services.stats
    return {
        "model": model_label(services),
        # The seed's field, without the credentials a URL may carry (the engines send
        # those as auth; no answer shows them).
        "vllm_url": public_url(backends[0].url) if backends else None,
        "stats": {
            "completed": stats.completed,
            "processing": stats.processing,
            "waiting": stats.waiting,
            "total_time": stats.total_time,
        },
        "engine": await services.engine.health(),
        # What clients (the page) may offer: reasoning only where the engine reasons.
        "features": {
            "thinking": engine_kind(settings) == "stepaudio",
            "logout": bool(settings.api_keys),
        },
    }


@router.get("/health", tags=["health"])
async def health(services: Services = Depends(get_services)) -> dict[str, str]:
    """The process is alive (the seed's health check)."""
    return {"status": "healthy", "model": model_label(services)}


@router.get("/ready", tags=["health"])
async def ready(services: Services = Depends(get_services)) -> JSONResponse:
    """A backend can take work: 200, else 503. Public (probes send no key), so it says
    that and nothing more: the backends, their state and errors are ``/api/status``'s."""
    report = await services.engine.health()
    ok = bool(report.get("ready"))
    return JSONResponse({"ready": ok}, status_code=200 if ok else 503)


@router.get("/metrics", tags=["health"], response_class=PlainTextResponse)
async def metrics(services: Services = Depends(get_services)) -> PlainTextResponse:
    """Prometheus metrics."""
    return PlainTextResponse(
        generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
