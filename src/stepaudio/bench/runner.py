"""`stepaudio bench`'s engine: build inputs of given durations, drive the service, sample.

Inputs are one recording looped or cut to each duration (decoded once, memory-mapped,
encoded to mp3 as a user would upload). Requests go over HTTP to ``POST /api/process``:
either a running service (``url``) or this process's own service on a loopback port,
so the numbers always include upload, decode, planning and merging — what a user waits
for. Each (mode, duration, concurrency) is one round of ``concurrency`` requests sent at
once. While rounds run, a thread samples the service's RSS and, where NVML and GPUs
exist, per-GPU memory and utilisation. Inputs are prepared by ``bench/inputs.py``,
samples taken by ``bench/sampling.py``; this module sends the rounds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import platform
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from stepaudio.bench.inputs import BenchInput, duration_label, prepare_inputs
from stepaudio.bench.sampling import Sampler


@dataclass
class RequestResult:
    mode: str
    duration_s: float
    file_bytes: int
    concurrency: int
    index: int
    ok: bool
    status_code: int | None
    started_s: float
    """When it was sent, seconds since the bench started."""
    elapsed_s: float
    """Client wall time: upload to last byte of the answer."""
    server_elapsed_s: float | None
    """The service's own ``elapsed_time``."""
    output_chars: int
    """Characters of ``answer`` (the seed's 输出长度)."""
    error: str | None = None
    peak_rss: int | None = None
    """The service's peak RSS over this request's round, where sampled."""

    @property
    def rtf(self) -> float:
        return self.elapsed_s / self.duration_s

    @property
    def chars_per_min(self) -> float:
        return self.output_chars / (self.duration_s / 60)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rtf": self.rtf, "chars_per_min": self.chars_per_min}


@dataclass
class BenchConfig:
    durations_s: list[float] = field(default_factory=lambda: [600.0, 1800.0, 3600.0])
    modes: list[str] = field(default_factory=lambda: ["s2t"])
    concurrency: list[int] = field(default_factory=lambda: [1])
    url: str | None = None
    """A running service; None: start one in this process from the settings."""
    segment_duration: float | None = None
    language: str | None = None
    extra_fields: dict[str, str] = field(default_factory=dict)
    """More form fields for every request (question, target_lang, max_tokens …)."""
    api_key: str | None = None
    timeout_s: float = 4 * 3600
    sample_interval_s: float = 0.5
    warmup: bool = True
    """Send one short request first, so model loading is not timed."""


def _form(mode: str, cfg: BenchConfig) -> dict[str, str]:
    form = {"mode": mode, **cfg.extra_fields}
    if cfg.segment_duration:
        form["segment_duration"] = str(cfg.segment_duration)
    if cfg.language:
        form["language"] = cfg.language
    return form


def _error_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        return str(body.get("error", {}).get("message") or body)[:500]
    except ValueError:
        return resp.text[:500]


async def _send(
    client: httpx.AsyncClient,
    data: bytes,
    inp: BenchInput,
    mode: str,
    cfg: BenchConfig,
    concurrency: int,
    index: int,
    t0: float,
) -> RequestResult:
    started = time.monotonic()
    status: int | None = None
    body: dict[str, Any] = {}
    error: str | None = None
    try:
        resp = await client.post(
            "/api/process",
            files={"audio": (inp.path.name, data, "application/octet-stream")},
            data=_form(mode, cfg),
        )
        status = resp.status_code
        if resp.is_success:
            body = resp.json()
        else:
            error = _error_text(resp)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - started
    ok = error is None and body.get("status") == "success" and bool(body.get("answer"))
    if error is None and not ok:
        error = "empty or unsuccessful answer"
    return RequestResult(
        mode=mode,
        duration_s=inp.duration_s,
        file_bytes=inp.size_bytes,
        concurrency=concurrency,
        index=index,
        ok=ok,
        status_code=status,
        started_s=round(started - t0, 3),
        elapsed_s=round(elapsed, 3),
        server_elapsed_s=body.get("elapsed_time"),
        output_chars=len(body.get("answer") or ""),
        error=error,
    )


ReportProgress = Callable[[int, int, str], None]
"""(requests done, requests in all, what runs now): a callback, unlike the pipeline's
``Progress`` record."""


async def _counted(
    request: Awaitable[RequestResult],
    results: list[RequestResult],
    done: Callable[[int], object],
) -> RequestResult:
    """Await one request, keep its result and report progress as soon as it ends."""
    result = await request
    results.append(result)
    done(len(results))
    return result


async def _drive(
    url: str,
    inputs: list[BenchInput],
    cfg: BenchConfig,
    sampler: Sampler,
    progress: ReportProgress | None,
    t0: float,
) -> list[RequestResult]:
    headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
    limits = httpx.Limits(max_connections=max(cfg.concurrency) + 2)
    timeout = httpx.Timeout(cfg.timeout_s, connect=30)
    total = len(cfg.modes) * len(inputs) * sum(cfg.concurrency)
    results: list[RequestResult] = []
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=timeout, limits=limits
    ) as client:
        if progress:
            progress(0, total, "starting")
        for mode in cfg.modes:
            for inp in inputs:
                data = inp.path.read_bytes()
                for level in cfg.concurrency:
                    phase = f"{mode} {duration_label(inp.duration_s)} ×{level}"
                    sampler.phase = phase
                    first = len(sampler.samples)
                    # A sample at each end, so even a round shorter than the interval has one.
                    sampler.take()
                    if progress:
                        progress(len(results), total, phase)

                    def report(n: int, phase: str = phase) -> None:
                        if progress:
                            progress(n, total, phase)

                    batch = await asyncio.gather(
                        *(
                            _counted(
                                _send(client, data, inp, mode, cfg, level, i, t0),
                                results,
                                report,
                            )
                            for i in range(level)
                        )
                    )
                    sampler.take()
                    rss = [s.rss for s in sampler.samples[first:] if s.rss is not None]
                    for r in batch:
                        r.peak_rss = max(rss) if rss else None
        sampler.phase = ""
    order = {(r.mode, r.duration_s, r.concurrency, r.index): r for r in results}
    return [order[k] for k in sorted(order, key=lambda k: (cfg.modes.index(k[0]), *k[1:]))]


async def _warm(url: str, path: Path, mode: str, cfg: BenchConfig) -> None:
    headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=cfg.timeout_s) as c:
        await c.post(
            "/api/process",
            files={"audio": (path.name, path.read_bytes(), "application/octet-stream")},
            data=_form(mode, cfg),
        )


def _service_info(url: str, cfg: BenchConfig) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
    try:
        resp = httpx.get(f"{url}/api/status", headers=headers, timeout=30)
        return resp.json() if resp.is_success else {"error": _error_text(resp)}
    except httpx.HTTPError as exc:
        return {"error": str(exc)}


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": psutil.cpu_count(logical=True),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


@contextmanager
def in_process_service(settings: Any = None, engine: Any = None) -> Iterator[str]:
    """This process's own service on a loopback port (engine from the settings, or given)."""
    from stepaudio.api import create_app
    from stepaudio.config import Settings
    from stepaudio.testing.server import serve_in_thread

    with serve_in_thread(create_app(settings or Settings(), engine=engine)) as url:
        yield url


def run_bench(
    source: Path,
    cfg: BenchConfig,
    work_dir: Path,
    *,
    settings: Any = None,
    engine: Any = None,
    progress: ReportProgress | None = None,
) -> dict[str, Any]:
    """Run the whole bench; return the raw result (JSON-ready) that the report renders."""
    started = dt.datetime.now(dt.UTC)
    inputs = prepare_inputs(source, sorted(set(cfg.durations_s)), work_dir)
    service: AbstractContextManager[str] = (
        nullcontext(cfg.url.rstrip("/")) if cfg.url else in_process_service(settings, engine)
    )
    with service as url:
        if cfg.warmup:
            warm = prepare_inputs(source, [min(5.0, min(cfg.durations_s))], work_dir)[0]
            if progress:
                progress(0, 0, "warming up")
            asyncio.run(_warm(url, warm.path, cfg.modes[0], cfg))
        info = _service_info(url, cfg)
        t0 = time.monotonic()
        with Sampler(None if not cfg.url else url, cfg.sample_interval_s, t0) as sampler:
            requests = asyncio.run(_drive(url, inputs, cfg, sampler, progress, t0))
    return {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "target": cfg.url or "in-process",
        "service": info,
        "machine": machine_info(),
        "source": {"path": str(source), "size_bytes": source.stat().st_size},
        "config": {
            **asdict(cfg),
            "api_key": "***" if cfg.api_key else None,
        },
        "inputs": [
            {"duration_s": i.duration_s, "path": str(i.path), "size_bytes": i.size_bytes}
            for i in inputs
        ],
        "requests": [r.to_dict() for r in requests],
        "sampling": {
            "interval_s": cfg.sample_interval_s,
            "gpu": sampler.gpu_note,
            "rss": sampler.rss_source,
        },
        "samples": [asdict(s) for s in sampler.samples],
    }
