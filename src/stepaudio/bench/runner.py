"""`stepaudio bench`'s engine: build inputs of given durations, drive the service, sample.

Inputs are one recording looped or cut to each duration (decoded once, memory-mapped,
encoded to mp3 as a user would upload). Requests go over HTTP to ``POST /api/process``:
either a running service (``url``) or this process's own service on a loopback port,
so the numbers always include upload, decode, planning and merging — what a user waits
for. Each (mode, duration, concurrency) is one round of ``concurrency`` requests sent at
once. While rounds run, a thread samples the service's RSS and, where NVML and GPUs
exist, per-GPU memory and utilisation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import platform
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from stepaudio.audio.decode import SAMPLE_RATE, DecodedAudio

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}


def parse_durations(text: str) -> list[float]:
    """``"10,30,60"`` → seconds. A bare number is minutes (as the seed's table); ``30s``,
    ``1.5m``, ``1h`` say their unit."""
    out = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        match = _DURATION.match(item)
        if not match:
            raise ValueError(f"not a duration: {item!r} (use e.g. 10, 30s, 1.5m, 1h)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "m").lower()]
        if seconds <= 0:
            raise ValueError(f"a duration must be positive: {item!r}")
        out.append(seconds)
    if not out:
        raise ValueError("no durations given")
    return out


def parse_ints(text: str, what: str = "value") -> list[int]:
    try:
        out = [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise ValueError(f"not a list of whole numbers: {text!r}") from exc
    if not out or min(out) < 1:
        raise ValueError(f"each {what} must be at least 1: {text!r}")
    return out


def duration_label(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:g} s"


# -- inputs ------------------------------------------------------------------------------


@dataclass
class BenchInput:
    duration_s: float
    path: Path
    size_bytes: int


def looped(samples: np.ndarray, n: int, chunk: int = SAMPLE_RATE * 10) -> Iterator[np.ndarray]:
    """The first ``n`` samples of ``samples`` repeated end to end, as views of ``chunk``."""
    if samples.size == 0:
        raise ValueError("the source recording has no audio")
    at = 0
    while at < n:
        start = at % samples.size
        take = min(chunk, samples.size - start, n - at)
        yield samples[start : start + take]
        at += take


def _source_key(source: Path) -> str:
    st = source.stat()
    return hashlib.sha1(f"{source.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[
        :10
    ]


def prepare_inputs(
    source: Path, durations_s: Sequence[float], work_dir: Path, fmt: str = "mp3"
) -> list[BenchInput]:
    """``source`` cut or looped to each duration, encoded as ``fmt``; reused when the same
    source was prepared before (an hour of mp3 takes a while to encode)."""
    from stepaudio.testing.encode import write_audio

    work_dir.mkdir(parents=True, exist_ok=True)
    key = _source_key(source)
    wanted = {d: work_dir / f"{source.stem}-{key}-{d:g}s.{fmt}" for d in durations_s}
    missing = [d for d, p in wanted.items() if not p.exists()]
    if missing:
        with DecodedAudio.from_file(source, work_dir) as decoded:
            for d in missing:
                partial = wanted[d].with_suffix(".partial." + fmt)
                write_audio(looped(decoded.samples, round(d * SAMPLE_RATE)), partial, fmt)
                partial.replace(wanted[d])
    return [BenchInput(d, p, p.stat().st_size) for d, p in wanted.items()]


def default_source(work_dir: Path) -> Path | None:
    """The bundled English test clips joined once (silence between), where this is a
    source checkout; None otherwise."""
    from stepaudio.testing.encode import write_audio
    from stepaudio.testing.longaudio import load_pcm

    data = Path(__file__).resolve().parents[3] / "tests" / "data" / "en"
    clips = sorted(p for p in data.glob("*") if p.suffix in {".wav", ".flac", ".mp3"})
    if not clips:
        return None
    target = work_dir / "bundled-clips-en.wav"
    if not target.exists():
        work_dir.mkdir(parents=True, exist_ok=True)
        gap = np.zeros(SAMPLE_RATE, dtype=np.int16)
        parts = [x for c in clips for x in (load_pcm(c), gap)]
        write_audio(np.concatenate(parts), target)
    return target


# -- sampling ----------------------------------------------------------------------------


@dataclass
class GpuSample:
    index: int
    name: str
    memory_used: int
    memory_total: int
    utilization: int
    """Percent of time a kernel ran over the last sample period (NVML)."""


@dataclass
class Sample:
    t: float
    """Seconds since the bench started."""
    phase: str
    rss: int | None
    gpus: list[GpuSample]


class _Nvml:
    """NVML through ``pynvml`` (package nvidia-ml-py), only where it imports and sees GPUs."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        self.note = "no GPU"
        try:
            import pynvml
        except ImportError:
            self.note = "no GPU (NVML not available: nvidia-ml-py not installed)"
            return
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except Exception as exc:  # NVMLError has many subclasses; any means "no GPUs here"
            self.note = f"no GPU (NVML: {exc})"
            return
        self._nv = pynvml
        self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        # Older nvidia-ml-py releases return bytes here, newer ones str.
        names = [pynvml.nvmlDeviceGetName(h) for h in self.handles]
        self.names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        if self.handles:
            self.note = f"{count} GPU(s) sampled through NVML"

    def sample(self) -> list[GpuSample]:
        out = []
        for i, h in enumerate(self.handles):
            mem = self._nv.nvmlDeviceGetMemoryInfo(h)
            util = self._nv.nvmlDeviceGetUtilizationRates(h)
            out.append(GpuSample(i, self.names[i], mem.used, mem.total, util.gpu))
        return out

    def close(self) -> None:
        if self.handles:
            self._nv.nvmlShutdown()


_RSS_METRIC = re.compile(r"^process_resident_memory_bytes(?:\{[^}]*\})?\s+([0-9.eE+]+)", re.M)


_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def local_listener(url: str) -> int | None:
    """The pid of the process listening on ``url``'s port, if the URL is this machine's
    loopback and the system lets us see it: its RSS can then be read directly."""
    parsed = httpx.URL(url)
    if parsed.host not in _LOOPBACK:
        return None
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None


class Sampler:
    """A background thread taking a :class:`Sample` every ``interval`` seconds."""

    def __init__(self, url: str | None, interval: float = 0.5, t0: float | None = None):
        self.interval = interval
        self.t0 = t0 if t0 is not None else time.monotonic()
        self.samples: list[Sample] = []
        self.phase = ""
        self._url = url
        self._client: httpx.Client | None = None
        self._proc: psutil.Process | None = None
        if url is None:
            self._proc = psutil.Process()
            self.rss_source = "this process (service in-process, bench client included)"
        elif (pid := local_listener(url)) is not None:
            self._proc = psutil.Process(pid)
            self.rss_source = f"process {pid}, listening on the service's loopback port"
            if pid == os.getpid():
                self.rss_source += " (this process: bench client included)"
        else:
            self.rss_source = "the service's /metrics (process_resident_memory_bytes)"
        self._nvml = _Nvml()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    @property
    def gpu_note(self) -> str:
        return self._nvml.note

    def _rss(self) -> int | None:
        if self._proc is not None:
            try:
                return self._proc.memory_info().rss
            except psutil.Error:
                return None
        if self._client is None:
            return None
        try:
            text = self._client.get("/metrics").text
        except httpx.HTTPError:
            return None
        match = _RSS_METRIC.search(text)
        if match is None:
            # The service does not export it: stop asking every half second.
            self._client.close()
            self._client = None
            self.rss_source = "not reported by the service (/metrics has no process RSS)"
            return None
        return int(float(match.group(1)))

    def take(self) -> Sample:
        sample = Sample(
            round(time.monotonic() - self.t0, 3), self.phase, self._rss(), self._nvml.sample()
        )
        self.samples.append(sample)
        return sample

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.take()

    def __enter__(self) -> Sampler:
        if self._url:
            self._client = httpx.Client(base_url=self._url, timeout=5)
        self.take()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.take()
        if self._client is not None:
            self._client.close()
        self._nvml.close()


# -- requests ----------------------------------------------------------------------------


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


Progress = Callable[[int, int, str], None]
"""(requests done, requests in all, what runs now)."""


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
    progress: Progress | None,
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

                    batch = await asyncio.gather(
                        *(
                            _counted(
                                _send(client, data, inp, mode, cfg, level, i, t0),
                                results,
                                lambda n, phase=phase: progress and progress(n, total, phase),
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
    progress: Progress | None = None,
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
