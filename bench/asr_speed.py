"""ASR through the whole service vs faster-whisper called directly, same model and settings.

A 10-minute mp3 built from the real clips goes to ``POST /api/process`` (mode asr) on a
real server (uvicorn on loopback, embedded engine), and to ``WhisperModel.transcribe``
with the service's settings (Whisper base, int8, 2 threads, beam 5, English). The direct
run goes before and after the service's, both models warm, so drift in the machine's
load shows. Aim: the service within 1.10x of direct.

    .venv/bin/python -m bench.asr_speed [MINUTES]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
from rich.console import Console

from bench.common import DATA, long_recording, machine, show

AIM_RATIO = 1.10
LANGUAGE = "en"
BEAM = 5
THREADS = 2


def _direct(model, path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    segments, _ = model.transcribe(str(path), beam_size=BEAM, language=LANGUAGE)
    # The generator does the work: consume it inside the timed span.
    text = " ".join(s.text.strip() for s in segments)
    return time.perf_counter() - start, text


def _service(client: httpx.Client, path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    with open(path, "rb") as f:
        resp = client.post(
            "/api/process",
            files={"audio": (path.name, f, "audio/mpeg")},
            data={"mode": "asr", "language": LANGUAGE},
        )
    wall = time.perf_counter() - start
    resp.raise_for_status()
    return wall, resp.json()["answer"]


def main(minutes: float = 10) -> dict:
    from faster_whisper import WhisperModel

    from stepaudio.api import create_app
    from stepaudio.config import Settings
    from stepaudio.engines.embedded import EmbeddedEngine
    from stepaudio.engines.local_models import resolve_whisper
    from stepaudio.testing.server import serve_in_thread

    console = Console()
    console.print(f"building/using a {minutes:g}-minute mp3 from the real clips …")
    audio = long_recording(minutes, "mp3")
    seconds = minutes * 60
    warmup = DATA / "en" / "jfk.flac"
    # Only the embedded engine, whatever the environment configures.
    settings = Settings(
        _env_file=None,
        backends=[],
        vllm_api_url=None,
        whisper_threads=THREADS,
        whisper_beam_size=BEAM,
        whisper_compute_type="int8",
    )
    model = WhisperModel(
        resolve_whisper("base", settings.data_dir),
        device="cpu",
        compute_type="int8",
        cpu_threads=THREADS,
    )
    _direct(model, warmup)

    runs: list[tuple[str, float, str]] = []
    wall, text = _direct(model, audio)
    runs.append(("faster-whisper direct (before)", wall, text))
    engine = EmbeddedEngine.from_settings(settings)
    with (
        serve_in_thread(create_app(settings, engine=engine)) as url,
        httpx.Client(base_url=url, timeout=3600) as client,
    ):
        _service(client, warmup)
        wall, text = _service(client, audio)
        runs.append(("service POST /api/process asr", wall, text))
    wall, text = _direct(model, audio)
    runs.append(("faster-whisper direct (after)", wall, text))

    direct = (runs[0][1] + runs[2][1]) / 2
    rows = [
        [label, f"{w:.1f}", f"{w / seconds:.3f}", f"{len(t):,}", f"{w / direct:.2f}x"]
        for label, w, t in runs
    ]
    cols = ["run", "wall s", "RTF", "output chars", "vs direct (mean)"]
    show(console, f"ASR of {audio.name} ({minutes:g} min), Whisper base int8", cols, rows)
    ratio = runs[1][1] / direct
    verdict = "[green]met" if ratio <= AIM_RATIO else "[red]missed"
    console.print(
        f"machine: {machine()}. service/direct: {ratio:.2f}x (aim ≤ {AIM_RATIO}) → {verdict}"
    )
    return {"ratio": ratio, "rows": rows}


if __name__ == "__main__":
    main(*(float(a) for a in sys.argv[1:2]))
