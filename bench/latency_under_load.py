"""A short request's latency alone vs while a long background task runs (issue 14).

A real server (uvicorn on loopback, the embedded engine, one task worker) gets a 10 s
clip (JFK, 11 s) ``N`` times in turn, first idle, then while an asr task on a long
recording holds the engine, then while 4 synchronous requests on it run at once, in the
same run, twice: with ``sync_first`` (the default: the clip's window runs in its own lane
beside the long work's, scheduler.py) and without (fair share: the clip takes the next
slot that frees, so it waits for a running window). Aim: p95 under load ≤ 2× idle.
Before the load, a recording of ``STREAM_MINUTES`` (default: the long one's) once through
``/api/process?stream=true``: time to the first window's text next to the full result.
``N`` 0: only that.

    .venv/bin/python -m bench.latency_under_load [LONG_MINUTES] [N] [STREAM_MINUTES]
    .venv/bin/python -m bench.latency_under_load 10 0 30   # first text of 30 minutes only
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from rich.console import Console

from bench.common import DATA, long_recording, machine, process_events, show

AIM = 2.0
CLIP = DATA / "en" / "jfk.flac"


def _short(client: httpx.Client) -> float:
    start = time.perf_counter()
    with open(CLIP, "rb") as f:
        r = client.post(
            "/api/process",
            files={"audio": (CLIP.name, f, "audio/flac")},
            data={"mode": "asr", "language": "en"},
        )
    r.raise_for_status()
    return time.perf_counter() - start


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _phase(url: str, long_file: Path | None, n: int) -> tuple[list[float], int, str]:
    """``n`` short requests in turn (while a task on ``long_file`` runs, if given);
    their latencies, how many ran while the task was still processing, and its end."""
    with httpx.Client(base_url=url, timeout=3600) as client:
        task_id = None
        if long_file is not None:
            with open(long_file, "rb") as f:
                r = client.post(
                    "/api/task",
                    files={"audio": (long_file.name, f, "audio/mpeg")},
                    data={"mode": "asr", "language": "en"},
                )
            r.raise_for_status()
            task_id = r.json()["task_id"]
            while (status := client.get(f"/api/task/{task_id}").json()["status"]) == "pending":
                time.sleep(0.2)
            if status != "processing":
                raise RuntimeError(f"the long task ended before the clips were sent: {status}")
            time.sleep(2)  # its first window is well under way
        latencies, under_load = [], 0
        for _ in range(n):
            latencies.append(_short(client))
            if task_id and client.get(f"/api/task/{task_id}").json()["status"] == "processing":
                under_load += 1
        state = "–"
        if task_id:
            state = client.get(f"/api/task/{task_id}").json()["status"]
            client.delete(f"/api/task/{task_id}")
            # Let the cancelled window's Whisper call end before the next phase.
            _short(client)
    return latencies, under_load, state


def _requests_phase(url: str, long_file: Path, k: int, n: int) -> tuple[list[float], int, str]:
    """``n`` short requests in turn while ``k`` synchronous requests on ``long_file`` run
    at once; their latencies, how many ended while all ``k`` still ran, and theirs."""

    def long_request() -> int:
        with httpx.Client(base_url=url, timeout=3600) as client, open(long_file, "rb") as f:
            return client.post(
                "/api/process",
                files={"audio": (long_file.name, f, "audio/mpeg")},
                data={"mode": "asr", "language": "en"},
            ).status_code

    with ThreadPoolExecutor(k) as pool, httpx.Client(base_url=url, timeout=3600) as client:
        longs = [pool.submit(long_request) for _ in range(k)]
        time.sleep(5)  # decoded and their first windows under way
        if any(f.done() for f in longs):
            raise RuntimeError("a long request ended before the clips were sent")
        latencies, under_load = [], 0
        for _ in range(n):
            latencies.append(_short(client))
            under_load += not any(f.done() for f in longs)
        statuses = sorted({f.result() for f in longs})
    return latencies, under_load, ",".join(map(str, statuses))


def first_text(url: str, source: Path) -> tuple[float, float, int]:
    """``POST /api/process`` with ``stream=true`` on ``source``: seconds to the first
    window's text, to the result, and the number of windows."""
    first, last, windows = None, float("nan"), 0
    for at, event in process_events(url, source, {"mode": "asr", "language": "en"}):
        if event["type"] == "window" and first is None:
            first = at
        elif event["type"] == "result":
            last, windows = at, event["windows"]
    return first or float("nan"), last, windows


LONG_REQUESTS = 4


def main(long_minutes: float = 10, n: int = 6, stream_minutes: float | None = None) -> dict:
    from stepaudio.api import create_app
    from stepaudio.config import Settings
    from stepaudio.engines.embedded import EmbeddedEngine
    from stepaudio.testing.server import serve_in_thread

    console = Console()
    long_file = long_recording(long_minutes, "mp3")
    stream_minutes = stream_minutes or long_minutes
    stream_file = long_recording(stream_minutes, "mp3")
    rows, results, stream_row = [], {}, []
    idle_p95 = None
    with tempfile.TemporaryDirectory() as tmp:
        for sync_first in (True, False) if n else (True,):
            settings = Settings(
                _env_file=None,
                backends=[],
                vllm_api_url=None,
                data_dir=Path(tmp) / f"sync-{sync_first}",
                sync_first=sync_first,
            )
            engine = EmbeddedEngine.from_settings(settings)
            with serve_in_thread(create_app(settings, engine=engine), settings=settings) as url:
                phases: list[tuple[str, Path | None, int]] = (
                    [("idle", None, 0)] if sync_first else []
                )
                phases.append((f"while a {long_minutes:g}-min asr task runs", long_file, 0))
                phases.append(
                    (
                        f"while {LONG_REQUESTS} {long_minutes:g}-min asr requests run",
                        long_file,
                        LONG_REQUESTS,
                    )
                )
                phases = phases if n else []
                with httpx.Client(base_url=url, timeout=600) as warm:
                    _short(warm)
                if sync_first:
                    ttft, total, windows = first_text(url, stream_file)
                    stream_row = [
                        f"{stream_minutes:g}-min asr, stream=true ({windows} windows)",
                        f"{ttft:.1f}",
                        f"{total:.1f}",
                        f"{ttft / total:.2f}",
                    ]
                for label, source, k in phases:
                    if k:
                        latencies, under, state = _requests_phase(url, long_file, k, n)
                    else:
                        latencies, under, state = _phase(url, source, n)
                    p95 = _p95(latencies)
                    if source is None:
                        idle_p95 = p95
                    name = f"{label}, sync_first={'on' if sync_first else 'off'}"
                    results[name] = latencies
                    rows.append(
                        [
                            name,
                            f"{statistics.median(latencies):.1f}",
                            f"{p95:.1f}",
                            f"{max(latencies):.1f}",
                            f"{p95 / idle_p95:.2f}x" if idle_p95 else "–",
                            f"{under}/{n}" if source else "–",
                        ]
                    )
    show(
        console,
        "Time to first streamed text, idle server",
        ["request", "first window's text s", "full result s", "ratio"],
        [stream_row],
    )
    if not n:
        console.print(f"machine: {machine()}.")
        return {"stream": stream_row}
    cols = ["10 s clip (JFK), asr", "median s", "p95 s", "max s", "p95 vs idle", "under load"]
    show(console, f"Short-request latency, embedded engine, {n} requests each", cols, rows)
    loaded = max(
        _p95(v) for k, v in results.items() if k.endswith("sync_first=on") and "while" in k
    )
    ratio = loaded / idle_p95 if idle_p95 else float("inf")
    verdict = "[green]met" if ratio <= AIM else "[red]missed"
    console.print(
        f"machine: {machine()}. worst p95 under load / idle (sync_first on): {ratio:.2f}x "
        f"(aim ≤ {AIM}) → {verdict}"
    )
    return {"ratio": ratio, "rows": rows}


if __name__ == "__main__":
    args = sys.argv[1:4]
    main(
        float(args[0]) if args else 10,
        int(args[1]) if len(args) > 1 else 6,
        float(args[2]) if len(args) > 2 else None,
    )
