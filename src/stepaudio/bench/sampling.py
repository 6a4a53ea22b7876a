"""`stepaudio bench`'s sampler: the service's RSS and, where NVML sees GPUs, per-GPU memory
and utilisation, taken by a background thread while the rounds run."""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import psutil


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
        if (
            conn.status == psutil.CONN_LISTEN
            and conn.laddr
            and conn.laddr.port == port
            and conn.pid
        ):
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
