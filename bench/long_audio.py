"""Long audio: transcript density, fan-out over backends, memory. ``python -m bench.long_audio``.

1. Characters of transcript per audio minute at 10, 30 and 60 minutes (recordings built
   from the real clips), ours (planned windows) beside the seed's way (one request per
   file) on the same stand-in server, and beside the seed's own published numbers.
2. Wall time of a 60-minute asr over 1, 2 and 4 stand-in backends with one per-request
   latency model; the speed-up, and the same 4 backends without wave-balanced windows.
3. Peak RSS of the service process while it processes a 60-minute file, its baseline
   (imports, engine) apart, and the embedded models' own memory measured apart.

The stand-ins are real HTTP servers validating every request (testing/standin.py). In
part 1 they answer with the real Whisper (beam 1, answers cached by the part's samples,
so the three lengths share work); in parts 2 and 3 a model-free transcriber answers, so
wall time is the latency model's and the service's own work, not this CPU's Whisper.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import heapq
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from bench.common import long_recording, machine, show
from stepaudio.audio.decode import SAMPLE_RATE, DecodedAudio
from stepaudio.config import BackendConfig, Settings
from stepaudio.engines.base import WindowJob
from stepaudio.engines.pool import BackendPool
from stepaudio.engines.stepaudio.engine import StepAudioEngine
from stepaudio.engines.whisper import WhisperTranscriber
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.run import Pipeline
from stepaudio.testing import StandIn

# The seed's own report (its README §5.2): s2t characters for one request of 10, 30 and
# 60 minutes. Per minute that is 585, 90 and 23 (the "269" is 2,691 / 10).
SEED_CHARS = {10: 5847, 30: 2691, 60: 1401}

# Part 2's per-request latency, grounded in the seed's own measurements of the real model
# on its deployment (4× L40S, vLLM, max_num_seqs 4), fitted as fixed + per audio second:
#   DESIGN §2: four 85-minute (5,100 s) requests side by side finished in 250–266 s (258);
#   seed README §5.2: one 10-minute (600 s) s2t request took 64.6 s.
#   per_s = (258 − 64.6) / (5,100 − 600) = 0.043 s per audio second,
#   fixed = 64.6 − 600 × 0.043 = 38.8 s (mostly decoding the ~1.5k reasoning tokens).
# Run at a tenth of real time so each configuration stays under ~2 minutes: the speed-up
# depends on the ratio fixed : per_s, which scaling keeps; only the service's own work
# (WAV, base64, HTTP) weighs 10× more than against real latencies, so the scaled speed-up
# is, if anything, a little pessimistic.
SEED_LATENCY = (38.8, 0.043)
TIME_SCALE = 0.1
LATENCY = (SEED_LATENCY[0] * TIME_SCALE, SEED_LATENCY[1] * TIME_SCALE)
"""Stand-in latency for part 2: 3.88 s per request plus 4.3 ms per audio second."""

console = Console()


class CachedWhisper:
    """The real Whisper for every stand-in of this process, answers kept by the part's
    samples: the same part sent twice (another length, another run) is transcribed once."""

    def __init__(self, models_dir: Path):
        self.inner = WhisperTranscriber("base", models_dir, beam_size=1)
        self.cache: dict[tuple[str, str], tuple[str, str | None]] = {}
        self.lock = threading.Lock()

    def transcribe(self, pcm: np.ndarray, task: str = "transcribe") -> tuple[str, str | None]:
        """(text, language), as the stand-in asks for it."""
        key = (hashlib.sha1(np.ascontiguousarray(pcm).tobytes()).hexdigest(), task)
        with self.lock:
            hit = self.cache.get(key)
        if hit is None:
            result = self.inner.transcribe(pcm, task=task)
            hit = (result.text, result.language)
            with self.lock:
                self.cache[key] = hit
        return hit


class ModelFree:
    """Answers without a model (about 150 words a minute, sentences of numbered words), for
    timing runs. Distinct words: one word over and over is what the output guard refuses
    as a loop."""

    def transcribe(self, pcm: np.ndarray, task: str = "transcribe") -> tuple[str, str | None]:
        words = [f"word{i}" for i in range(max(1, int(pcm.size / SAMPLE_RATE * 2.5)))]
        sentences = [" ".join(words[i : i + 12]) + "." for i in range(0, len(words), 12)]
        return " ".join(sentences), "en"


def pool_for(servers: list[StandIn], settings: Settings) -> BackendPool:
    return BackendPool(
        [
            StepAudioEngine(BackendConfig(url=s.url, max_concurrency=s.max_num_seqs), settings)
            for s in servers
        ],
        settings,
    )


async def process(servers: list[StandIn], settings: Settings, path: Path, params: ProcessParams):
    pool = pool_for(servers, settings)
    try:
        return await Pipeline(pool, settings).process(path, params)
    finally:
        await pool.aclose()


async def one_request(server: StandIn, settings: Settings, path: Path) -> tuple[int, bool]:
    """The seed's way: the whole file in one request, max_tokens 2048. Returns the
    characters a client would get back (the seed returned cut text as the answer)."""
    engine = StepAudioEngine(BackendConfig(url=server.url), settings)
    try:
        with DecodedAudio.from_file(path, settings.data_dir / "tmp") as decoded:
            job = WindowJob(Mode.ASR, decoded.samples, 0.0, ProcessParams(mode=Mode.ASR))
            out = await engine.run_window(job)
    finally:
        await engine.aclose()
    return len(out.text or out.thinking), out.truncated


# -- 1. characters per minute -------------------------------------------------------------


def density(minutes: list[int], tmp: Path) -> None:
    settings = Settings(data_dir=tmp, _env_file=None)
    whisper = CachedWhisper(settings.models_path)
    rows = []
    with StandIn(transcriber=whisper, max_num_seqs=4) as server:
        for m in minutes:
            path = long_recording(m, "mp3")
            started = time.perf_counter()
            # parallel=1: windows are then cut the same way at every length (no wave
            # balancing), so the three lengths share cached answers; density is the same.
            ours = asyncio.run(
                process([server], settings, path, ProcessParams(mode=Mode.S2T, parallel=1))
            )
            ours_s = time.perf_counter() - started
            chars = len(ours.transcript or "")
            seed_way, cut = asyncio.run(one_request(server, settings, path))
            rows.append(
                [
                    f"{m} min",
                    f"{SEED_CHARS[m]:,}",
                    round(SEED_CHARS[m] / m),
                    f"{seed_way:,}" + (" (cut)" if cut else ""),
                    round(seed_way / m),
                    f"{chars:,}",
                    round(chars / m),
                    ours.windows,
                    f"{ours_s:.0f}",
                ]
            )
            console.print(f"  {m} min done ({ours_s:.0f} s)")
        violations = list(server.stats.violations)
    show(
        console,
        "Transcript characters per audio minute (s2t)",
        [
            "audio",
            "seed: chars",
            "seed: /min",
            "one request here: chars",
            "/min",
            "ours: chars",
            "ours: /min",
            "windows",
            "ours: s",
        ],
        rows,
    )
    console.print(f"stand-in violations: {violations or 'none'}")


# -- 2. fan-out over backends ---------------------------------------------------------------


# The stand-ins of part 2 live in their own process, as real backends are other machines:
# in the service's process they would share its GIL and add their JSON parsing and base64
# decoding of the whole hour to the service's wall time.
_STANDINS = r"""
import json, sys
from bench.long_audio import ModelFree
from stepaudio.testing import StandIn

n, seqs, fixed, per_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
servers = [
    StandIn(transcriber=ModelFree(), max_num_seqs=seqs, latency=(fixed, per_s)).start()
    for _ in range(n)
]
print(json.dumps([s.url for s in servers]), flush=True)
sys.stdin.read()  # until the parent closes our stdin
for s in servers:
    s.stop()
print(json.dumps([{"max_running": s.stats.max_running, "requests": s.stats.requests,
                   "audio_s": [sum(r["parts"]) for r in s.stats.log],
                   "violations": list(s.stats.violations)} for s in servers]), flush=True)
"""


class StandInProcess:
    """``n`` stand-in servers in a child process; a context manager giving their URLs."""

    def __init__(self, n: int, max_num_seqs: int, latency: tuple[float, float]):
        self.args = [str(n), str(max_num_seqs), str(latency[0]), str(latency[1])]
        self.urls: list[str] = []
        self.stats: list[dict] = []

    def __enter__(self) -> StandInProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _STANDINS, *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"the stand-ins did not start ({self.proc.returncode})")
        self.urls = json.loads(line)
        return self

    def __exit__(self, *exc: object) -> None:
        out, _ = self.proc.communicate(timeout=60)
        lines = out.strip().splitlines()
        self.stats = json.loads(lines[-1]) if lines else []


def fanout(tmp: Path, latency: tuple[float, float], seqs_list: list[int]) -> None:
    settings = Settings(data_dir=tmp, _env_file=None)
    path = long_recording(60, "wav")
    runs = [(4, 1, None), (4, 2, None), (4, 4, None), (4, 4, "plain"), (1, 1, None), (1, 4, None)]
    # max_num_seqs 4 as the real deployment runs; 1 as a GPU saturated by one request.
    runs = [r for r in runs if r[0] in seqs_list]
    rows = []
    base: dict[int, float] = {}
    base_floor: dict[int, float] = {}
    for seqs, n, variant in runs:
        with StandInProcess(n, seqs, latency) as standins:
            engines = [
                StepAudioEngine(BackendConfig(url=u, max_concurrency=seqs), settings)
                for u in standins.urls
            ]
            pool = BackendPool(engines, settings)
            # Every slot of the pool may serve this one job (the default is 4 per request).
            params = ProcessParams(mode=Mode.ASR, parallel=seqs * n)
            if variant == "plain":
                # The planner's longest window, cut plainly: no wave balancing.
                params = params.model_copy(update={"segment_duration": 107})

            async def run(pool: BackendPool = pool, params: ProcessParams = params):
                try:
                    return await Pipeline(pool, settings).process(path, params)
                finally:
                    await pool.aclose()

            started = time.perf_counter()
            result = asyncio.run(run())
            wall = time.perf_counter() - started
        assert standins.stats and all(not s["violations"] for s in standins.stats)
        base.setdefault(seqs, wall)
        audio_s = [a for s in standins.stats for a in s["audio_s"]]
        floor = latency_floor(audio_s, seqs * n, latency)
        base_floor.setdefault(seqs, floor)
        rows.append(
            [
                f"{n} × max_num_seqs {seqs}" + (" (windows not balanced)" if variant else ""),
                result.windows,
                max(s["max_running"] for s in standins.stats),
                f"{wall:.1f}",
                f"{result.timings.decode:.1f}",
                f"{base[seqs] / wall:.2f}×",
                f"{floor:.1f}",
                f"{base_floor[seqs] / floor:.2f}×",
            ]
        )
        console.print(f"  {rows[-1][0]}: {wall:.1f} s")
    show(
        console,
        f"60-minute asr over stand-in backends in their own process (latency "
        f"{latency[0]:g} s + {latency[1] * 1000:g} ms per audio second per request)",
        [
            "backends",
            "windows",
            "max running / backend",
            "wall s",
            "decode s",
            "speed-up",
            "latency model alone s",
            "its speed-up",
        ],
        rows,
    )


def latency_floor(audio_s: list[float], slots: int, latency: tuple[float, float]) -> float:
    """Wall time of the latency model alone (a service costing nothing): the requests the
    stand-ins served, started in turn on the first free one of ``slots``."""
    free = [0.0] * slots
    for a in audio_s:
        start = heapq.heappop(free)
        heapq.heappush(free, start + latency[0] + latency[1] * a)
    return max(free)


# -- 3. memory --------------------------------------------------------------------------------

_CHILD = r"""
import asyncio, json, sys, threading, time
from pathlib import Path
import psutil
from stepaudio.config import BackendConfig, Settings
from stepaudio.engines.pool import BackendPool
from stepaudio.engines.stepaudio.engine import StepAudioEngine
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.run import Pipeline

path, data_dir, urls = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
me = psutil.Process()
settings = Settings(data_dir=data_dir, _env_file=None)
peak = peak_anon = 0
stop = threading.Event()
def anon():
    # RssAnon: the process's own memory, without file pages (the decoded audio's map).
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0
def sample():
    global peak, peak_anon
    while not stop.is_set():
        peak = max(peak, me.memory_info().rss)
        peak_anon = max(peak_anon, anon())
        time.sleep(0.02)
async def main():
    pool = BackendPool([StepAudioEngine(BackendConfig(url=u), settings) for u in urls], settings)
    await pool.start()
    pipeline = Pipeline(pool, settings)
    baseline, baseline_anon = me.memory_info().rss, anon()
    t = threading.Thread(target=sample, daemon=True); t.start()
    result = await pipeline.process(path, ProcessParams(mode=Mode.ASR, parallel=16))
    stop.set(); t.join()
    await pool.aclose()
    print(json.dumps({"baseline": baseline, "peak": peak, "windows": result.windows,
                      "baseline_anon": baseline_anon, "peak_anon": peak_anon,
                      "chars": len(result.answer)}))
asyncio.run(main())
"""

_MODELS = r"""
import asyncio, json, sys
from pathlib import Path
import psutil
from stepaudio.config import Settings
from stepaudio.engines.base import TextJob, WindowJob
from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.params import Mode, ProcessParams
from stepaudio.testing.longaudio import load_pcm

me = psutil.Process()
settings = Settings(data_dir=Path(sys.argv[2]), _env_file=None)
before = me.memory_info().rss
engine = EmbeddedEngine.from_settings(settings)
params = ProcessParams(mode=Mode.ASR, language="en")
async def main():
    await engine.run_window(WindowJob(Mode.ASR, load_pcm(Path(sys.argv[1])), 0.0, params))
    await engine.complete(TextJob("You are helpful.", "Say hello.", params, max_tokens=8))
asyncio.run(main())
print(json.dumps({"before": before, "after": me.memory_info().rss}))
"""


def _child(code: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory(tmp: Path) -> None:
    path = long_recording(60, "mp3")
    transcriber = ModelFree()
    servers = [StandIn(transcriber=transcriber, max_num_seqs=4).start() for _ in range(4)]
    try:
        svc = _child(_CHILD, str(path), str(tmp), *[s.url for s in servers])
    finally:
        for s in servers:
            s.stop()
    jfk = Path(__file__).resolve().parent.parent / "tests" / "data" / "en" / "jfk.flac"
    models = _child(_MODELS, str(jfk), str(tmp))
    mb = 1 / 2**20
    decoded_mb = 60 * 60 * SAMPLE_RATE * 2 * mb
    rows = [
        ["service baseline (imports, pool engine)", f"{svc['baseline'] * mb:.0f}"],
        ["service peak while processing 60 min (mp3)", f"{svc['peak'] * mb:.0f}"],
        ["audio side (peak − baseline)", f"{(svc['peak'] - svc['baseline']) * mb:.0f}"],
        [
            "  of it anonymous (RssAnon peak − baseline)",
            f"{(svc['peak_anon'] - svc['baseline_anon']) * mb:.0f}",
        ],
        ["for scale: the 60 min decoded once (16 kHz int16)", f"{decoded_mb:.0f}"],
        ["embedded models (Whisper base + SmolLM2) loaded, apart", ""],
        ["  process before loading", f"{models['before'] * mb:.0f}"],
        ["  after one call of each model", f"{models['after'] * mb:.0f}"],
        ["  models' own memory", f"{(models['after'] - models['before']) * mb:.0f}"],
    ]
    show(console, "Memory of the service process (RSS, MB)", ["", "MB"], rows)
    console.print(f"{svc['windows']} windows, {svc['chars']:,} characters")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.long_audio")
    parser.add_argument(
        "--parts", default="density,fanout,memory", help="comma-separated subset to run"
    )
    parser.add_argument("--minutes", default="10,30,60", help="lengths for the density part")
    parser.add_argument(
        "--latency",
        default=f"{LATENCY[0]:g},{LATENCY[1]:g}",
        help="fan-out part: stand-in latency 'fixed_s,s_per_audio_s' (default: the seed's "
        "measured latency at a tenth of real time)",
    )
    parser.add_argument("--seqs", default="4,1", help="fan-out part: max_num_seqs values")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    console.print(f"[bold]long audio[/bold] — {machine()} — {time.strftime('%Y-%m-%d')}")
    with tempfile.TemporaryDirectory(prefix="bench-long-") as tmp:
        os.environ.setdefault("STEPAUDIO_DATA_DIR", tmp)
        if "density" in parts:
            density([int(m) for m in args.minutes.split(",")], Path(tmp))
        if "fanout" in parts:
            fixed, per_s = (float(x) for x in args.latency.split(","))
            fanout(Path(tmp), (fixed, per_s), [int(x) for x in args.seqs.split(",")])
        if "memory" in parts:
            memory(Path(tmp))


if __name__ == "__main__":
    main()
