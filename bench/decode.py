"""Decode a 60-minute mp3 to 16 kHz mono int16: our decoder vs ffmpeg vs a naive PyAV loop.

Each decoder runs in its own fresh process, so its wall time includes start-up and its
peak RSS (from the kernel's rusage of that child) is its own alone. Aims: our decoder
within 1.5x ffmpeg's time and under 250 MB peak RSS.

    .venv/bin/python -m bench.decode [MINUTES] [REPEAT]
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from bench.common import OUT, long_recording, machine, python_child, run_measured, show

AIM_RATIO = 1.5
AIM_RSS_MB = 250

OURS = """
import json, sys, time
from pathlib import Path
t = time.perf_counter()
from stepaudio.audio.decode import DecodedAudio
with DecodedAudio.from_file(Path(sys.argv[1]), Path(sys.argv[2])) as d:
    n = d.n_samples
print(json.dumps({"samples": n, "inner_s": time.perf_counter() - t}))
"""

# What one writes first with PyAV: resample every codec frame, keep every chunk, join.
NAIVE = """
import json, sys, time
t = time.perf_counter()
import av, numpy as np
chunks = []
with av.open(sys.argv[1]) as c:
    r = av.AudioResampler(format="s16", layout="mono", rate=16000)
    for frame in c.decode(audio=0):
        for out in r.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1))
    for out in r.resample(None):
        chunks.append(out.to_ndarray().reshape(-1))
pcm = np.concatenate(chunks)
print(json.dumps({"samples": int(pcm.size), "inner_s": time.perf_counter() - t}))
"""

# The interpreter with numpy and PyAV imported: the floor under both Python rows.
BASELINE = "import numpy, av, stepaudio.audio.decode"


def _ffmpeg(src: Path, tmp: Path) -> tuple[float, float, int]:
    raw = tmp / "ffmpeg.s16"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(src)]
    m = run_measured([*cmd, "-ar", "16000", "-ac", "1", "-f", "s16le", "-"], stdout_path=raw)
    samples = raw.stat().st_size // 2
    raw.unlink()
    return m.wall_s, m.peak_rss_mb, samples


def _python(code: str, *args: str) -> tuple[float, float, int]:
    m = run_measured([*python_child(code), *args])
    return m.wall_s, m.peak_rss_mb, json.loads(m.stdout)["samples"]


def main(minutes: float = 60, repeat: int = 2) -> dict:
    console = Console()
    if not shutil.which("ffmpeg"):
        console.print("[red]ffmpeg is not installed; nothing to compare with[/red]")
        return {}
    console.print(f"building/using a {minutes:g}-minute mp3 from the real clips …")
    src = long_recording(minutes, "mp3")
    OUT.mkdir(parents=True, exist_ok=True)
    best: dict[str, tuple[float, float, int]] = {}
    with tempfile.TemporaryDirectory(dir=OUT) as name:
        tmp = Path(name)
        runs = {
            "ffmpeg -ar 16000 -ac 1 -f s16le": lambda: _ffmpeg(src, tmp),
            "stepaudio DecodedAudio.from_file": lambda: _python(OURS, str(src), str(tmp)),
            "naive PyAV (per-frame resample + concatenate)": lambda: _python(NAIVE, str(src)),
        }
        # Interleaved repeats: load from other work on the machine hits all rows alike.
        for _ in range(repeat):
            for label, fn in runs.items():
                wall, rss, samples = fn()
                prev = best.get(label)
                best[label] = (
                    min(wall, prev[0]) if prev else wall,
                    max(rss, prev[1]) if prev else rss,
                    samples,
                )
        base_rss = run_measured(python_child(BASELINE)).peak_rss_mb

    ff_wall = best["ffmpeg -ar 16000 -ac 1 -f s16le"][0]
    rows = [
        [label, f"{wall:.2f}", f"{wall / ff_wall:.2f}x", f"{rss:.0f}", f"{samples:,}"]
        for label, (wall, rss, samples) in best.items()
    ]
    rows.append(["python + numpy + av imported (floor)", "", "", f"{base_rss:.0f}", ""])
    cols = ["decoder", "wall s (best)", "vs ffmpeg", "peak RSS MB", "samples"]
    size_mb = src.stat().st_size / 1e6
    show(console, f"decode {src.name} ({size_mb:.1f} MB) to 16 kHz mono", cols, rows)
    ours = best["stepaudio DecodedAudio.from_file"]
    ratio = ours[0] / ff_wall
    ok = ratio <= AIM_RATIO and ours[1] <= AIM_RSS_MB
    console.print(
        f"machine: {machine()}; best of {repeat}. ours: {ratio:.2f}x ffmpeg (aim ≤ {AIM_RATIO}),"
        f" {ours[1]:.0f} MB peak RSS (aim ≤ {AIM_RSS_MB}) → {'[green]met' if ok else '[red]missed'}"
    )
    return {"ratio": ratio, "rss_mb": ours[1], "met": ok, "rows": rows}


if __name__ == "__main__":
    args = [float(a) for a in sys.argv[1:]]
    main(*(args[:1] or [60]), *(int(a) for a in args[1:2]))
