"""ASR through the whole service vs faster-whisper called directly, same file, same run.

A 10-minute mp3 built from the real clips goes, in one process and one run, to:

- ``WhisperModel.transcribe`` (faster-whisper's sequential path, the naive use);
- faster-whisper's ``BatchedInferencePipeline`` (its own VAD chunks, batch 8);
- ``POST /api/process`` (mode asr) on a real server (uvicorn on loopback, the embedded
  engine with its defaults: contiguous VAD chunks decoded ``whisper.batch_size`` at once
  without timestamp tokens, sentences timed by word alignment);
- the service again with ``whisper.batch_size=0`` (sequential), the overhead check.

All with Whisper base, int8, 2 threads, beam 5, English, models warm. Word error rate
against the clips' reference texts. Aims (issue 14): the service ≥ 1.5× faster than the
sequential direct call, its WER within 0.5 points of it.

    .venv/bin/python -m bench.asr_speed [MINUTES]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
from rich.console import Console

from bench.common import DATA, clips, long_recording, machine, show

AIM_SPEEDUP = 1.5
AIM_WER_POINTS = 0.5
LANGUAGE = "en"
BEAM = 5
THREADS = 2
BATCH = 8


def reference(minutes: float) -> str:
    """The texts of the clips the recording holds whole (it repeats them in order and is
    cut at ``minutes``: the words of a cut last clip count as insertions in every run
    alike, a small bias on a 10-minute file)."""
    from stepaudio.testing.longaudio import build

    _, placements = build(clips(LANGUAGE), minutes * 60)
    return " ".join(
        p.source.with_suffix(".txt").read_text().strip()
        for p in placements
        if p.end <= minutes * 60
    )


def wer(ref: str, hyp: str) -> float:
    from tests.helpers import wer as _wer

    return _wer([ref], [hyp])


def _direct(transcribe, path: Path) -> tuple[float, str]:
    from faster_whisper import decode_audio

    start = time.perf_counter()
    segments, _ = transcribe(decode_audio(str(path)))
    # The generator does the work: consume it inside the timed span.
    text = " ".join(s.text.strip() for s in segments)
    return time.perf_counter() - start, text


def _service(url: str, path: Path) -> tuple[float, str]:
    with httpx.Client(base_url=url, timeout=3600) as client:
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
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from stepaudio.api import create_app
    from stepaudio.config import Settings
    from stepaudio.engines.embedded import EmbeddedEngine
    from stepaudio.engines.local_models import resolve_whisper
    from stepaudio.testing.server import serve_in_thread

    console = Console()
    console.print(f"building/using a {minutes:g}-minute mp3 from the real clips …")
    audio = long_recording(minutes, "mp3")
    ref = reference(minutes)
    seconds = minutes * 60
    warmup = DATA / "en" / "jfk.flac"

    def settings(batch: int) -> Settings:
        # Only the embedded engine, whatever the environment configures.
        return Settings(
            _env_file=None,
            backends=[],
            vllm_api_url=None,
            whisper_threads=THREADS,
            whisper_beam_size=BEAM,
            whisper_compute_type="int8",
            whisper_batch_size=batch,
        )

    model = WhisperModel(
        resolve_whisper("base", settings(0).models_path),
        device="cpu",
        compute_type="int8",
        cpu_threads=THREADS,
    )
    batched = BatchedInferencePipeline(model)

    def sequential_call(pcm):
        return model.transcribe(pcm, beam_size=BEAM, language=LANGUAGE)

    def batched_call(pcm):
        return batched.transcribe(pcm, beam_size=BEAM, language=LANGUAGE, batch_size=BATCH)

    _direct(sequential_call, warmup)
    runs: list[tuple[str, float, str]] = []
    wall, text = _direct(sequential_call, audio)
    runs.append(("faster-whisper sequential, direct", wall, text))
    wall, text = _direct(batched_call, audio)
    runs.append((f"faster-whisper batched (its VAD, batch {BATCH}), direct", wall, text))
    for batch, label in ((BATCH, f"batch {BATCH}, the default"), (0, "sequential")):
        engine = EmbeddedEngine.from_settings(settings(batch))
        with serve_in_thread(create_app(settings(batch), engine=engine)) as url:
            _service(url, warmup)
            wall, text = _service(url, audio)
        runs.append((f"service POST /api/process asr ({label})", wall, text))

    base_wall, base_text = runs[0][1], runs[0][2]
    base_wer = wer(ref, base_text)
    rows = [
        [
            label,
            f"{w:.1f}",
            f"{w / seconds:.3f}",
            f"{base_wall / w:.2f}x",
            f"{100 * wer(ref, t):.1f}",
            f"{len(t):,}",
        ]
        for label, w, t in runs
    ]
    cols = ["run", "wall s", "RTF", "speed vs sequential", "WER %", "output chars"]
    show(console, f"ASR of {audio.name} ({minutes:g} min), Whisper base int8 beam 5", cols, rows)
    speedup = base_wall / runs[2][1]
    points = 100 * (wer(ref, runs[2][2]) - base_wer)
    met = speedup >= AIM_SPEEDUP and points <= AIM_WER_POINTS
    verdict = "[green]met" if met else "[red]missed"
    console.print(
        f"machine: {machine()}. service (default) vs sequential direct: {speedup:.2f}x faster "
        f"(aim ≥ {AIM_SPEEDUP}), WER {points:+.1f} points (aim ≤ +{AIM_WER_POINTS}) → {verdict}"
    )
    return {"speedup": speedup, "wer_points": points, "rows": rows}


if __name__ == "__main__":
    main(*(float(a) for a in sys.argv[1:2]))
