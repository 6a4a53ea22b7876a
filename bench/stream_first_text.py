"""Streaming a long recording: when the first text shows, and how often more follows.

A 5-minute mp3 built from the real English clips (no language given) goes, in one run:

- to ``POST /api/process`` with ``stream=true`` on a real server (embedded engine,
  defaults): the time from the request to the first ``heard`` event (a speech chunk's
  text), to each later one, to the first ``window`` event (all the stream gave before:
  the whole window, here the whole recording) and to the result; then without
  ``stream`` (what decoding chunk by chunk costs: the plain request decodes in batches);
- to faster-whisper called directly, its generators consumed as they yield: the
  sequential ``WhisperModel.transcribe`` (a segment per 30 s decoded) and the
  ``BatchedInferencePipeline`` (batch 8: a batch of chunks at a time).

Aim (issue 25): the first text within 5 s of the request, then chunk by chunk.

    .venv/bin/python -m bench.stream_first_text [MINUTES]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import httpx
from rich.console import Console

from bench.common import DATA, long_recording, machine, process_events, show

AIM_FIRST_S = 5.0
THREADS = 2
BEAM = 5


def _service(url: str, path: Path) -> dict[str, object]:
    """Times (s from the request) of the stream's events, and the result's text."""
    heard: list[float] = []
    window: float | None = None
    total, text = float("nan"), ""
    for at, event in process_events(url, path, {"mode": "asr"}):
        if event["type"] == "heard":
            heard.append(at)
        elif event["type"] == "window" and window is None:
            window = at
        elif event["type"] == "result":
            total, text = at, event["answer"]
    return {"heard": heard, "window": window, "total": total, "text": text}


def _direct(segments: Iterable, started: float) -> dict[str, object]:
    times, texts = [], []
    for segment in segments:  # the generator does the work as it is read
        times.append(time.perf_counter() - started)
        texts.append(segment.text.strip())
    return {"heard": times, "total": time.perf_counter() - started, "text": " ".join(texts)}


def _gaps(times: list[float]) -> str:
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return f"{statistics.median(gaps):.1f} / {max(gaps):.1f}" if gaps else "–"


def main(minutes: float = 5) -> dict:
    from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

    from stepaudio.api import create_app
    from stepaudio.config import Settings
    from stepaudio.engines.embedded import EmbeddedEngine
    from stepaudio.engines.local_models import resolve_whisper
    from stepaudio.testing.server import serve_in_thread

    console = Console()
    audio = long_recording(minutes, "mp3")
    settings = Settings(_env_file=None, backends=[], vllm_api_url=None)
    runs: list[tuple[str, dict]] = []
    engine = EmbeddedEngine.from_settings(settings)
    with serve_in_thread(create_app(settings, engine=engine)) as url:
        _service(url, DATA / "en" / "jfk.flac")  # models warm
        service = _service(url, audio)
        started = time.perf_counter()
        with open(audio, "rb") as f:
            plain = httpx.post(
                f"{url}/api/process", files={"audio": f}, data={"mode": "asr"}, timeout=3600
            )
        plain.raise_for_status()
        whole = time.perf_counter() - started
    runs.append(("service, stream=true: heard events", service))
    runs.append(
        (
            "service, stream=true: the window event (the stream before)",
            {"heard": [service["window"]], "total": service["total"], "text": service["text"]},
        )
    )
    runs.append(
        (
            "service, plain request",
            {"heard": [whole], "total": whole, "text": plain.json()["answer"]},
        )
    )
    model = WhisperModel(
        resolve_whisper("base", settings.models_path),
        device="cpu",
        compute_type="int8",
        cpu_threads=THREADS,
    )
    started = time.perf_counter()
    segments, _ = model.transcribe(decode_audio(str(audio)), beam_size=BEAM)
    runs.append(("faster-whisper sequential, direct", _direct(segments, started)))
    started = time.perf_counter()
    segments, _ = BatchedInferencePipeline(model).transcribe(
        decode_audio(str(audio)), beam_size=BEAM, batch_size=8
    )
    runs.append(("faster-whisper batched 8, direct", _direct(segments, started)))

    first_direct = runs[3][1]["heard"][0]  # type: ignore[index]
    rows = []
    for label, run in runs:
        times: list[float] = run["heard"]  # type: ignore[assignment]
        rows.append(
            [
                label,
                f"{times[0]:.1f}",
                f"{times[0] / first_direct:.2f}x",
                len(times),
                _gaps(times),
                f"{run['total']:.1f}",
            ]
        )
    cols = ["run", "first text s", "vs sequential direct", "texts", "gap median / max s", "all s"]
    show(console, f"Streaming {audio.name} ({minutes:g} min), Whisper base", cols, rows)
    first = service["heard"][0]  # type: ignore[index]
    verdict = "[green]met" if first <= AIM_FIRST_S else "[red]missed"
    console.print(
        f"machine: {machine()}. first text {first:.1f} s (aim ≤ {AIM_FIRST_S}) → {verdict}"
    )
    return {"first_s": first, "rows": rows}


if __name__ == "__main__":
    main(*(float(a) for a in sys.argv[1:2]))
