"""`stepaudio bench` end to end: the embedded engine in-process, and a service in front of
a Step-Audio stand-in over its URL. Short durations; real audio, real models."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from stepaudio.api import create_app
from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.bench.inputs import joined_clips, looped, parse_durations
from stepaudio.bench.report import PLOTS
from stepaudio.cli import app
from stepaudio.config import BackendConfig, Settings
from stepaudio.testing import StandIn
from stepaudio.testing.longaudio import load_pcm
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip

SEED_HEADERS = ["音频时长", "文件大小", "处理耗时", "输出长度", "状态"]


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    length, kind = struct.unpack(">I4s", data[8:16])
    width, height = struct.unpack(">II", data[16:24])
    assert (length, kind) == (13, b"IHDR") and width > 100 and height > 100, path
    assert data[-8:-4] == b"IEND", path


def duration_rows(markdown: str) -> dict[str, str]:
    """Rows of the seed's tables, keyed by their duration cell."""
    header = next(line for line in markdown.splitlines() if line.startswith("| 音频时长"))
    rows = {}
    for block in markdown.split(header)[1:]:
        for line in block.splitlines()[2:]:
            if not line.startswith("|"):
                break
            rows[line.split("|")[1].strip()] = line
    return rows


def check_report(out: Path, durations: list[str], n_requests: int) -> dict:
    md = (out / "BENCHMARK.md").read_text(encoding="utf-8")
    for column in SEED_HEADERS:
        assert column in md
    rows = duration_rows(md)
    assert sorted(rows) == sorted(durations), md
    for line in rows.values():
        assert "✅" in line, line
    for name in PLOTS:
        if name != "memory_over_time.png" or (out / name).exists():
            assert_png(out / name)
    raw = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert len(raw["requests"]) == n_requests
    for r in raw["requests"]:
        assert r["ok"], r
        # Real English speech comes out at hundreds of characters a minute.
        assert r["chars_per_min"] > 300, r
        assert 0 < r["rtf"] < 5
    return raw


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv("STEPAUDIO_DATA_DIR", str(settings.data_dir))
    for name in ("STEPAUDIO_BACKENDS", "STEPAUDIO_VLLM_API_URL", "VLLM_API_URL"):
        monkeypatch.delenv(name, raising=False)


def test_parse_durations_and_loop() -> None:
    assert parse_durations("10,30,60") == [600, 1800, 3600]
    assert parse_durations("20s, 1.5m,1h") == [20, 90, 3600]
    with pytest.raises(ValueError):
        parse_durations("ten")
    src = np.arange(5, dtype=np.int16)
    assert np.concatenate(list(looped(src, 12, chunk=3))).tolist() == [0, 1, 2, 3, 4] * 2 + [0, 1]
    assert np.concatenate(list(looped(src, 3))).tolist() == [0, 1, 2]


def test_joined_clips_come_from_the_given_folder(tmp_path: Path) -> None:
    """The bench's default source is built from the folder the caller names (no repo
    layout inside the library): its clips in name order, a second of silence after each."""
    clips = tmp_path / "clips"
    clips.mkdir()
    names = ["zh/wenet_nst_ID003.wav", "zh/wenet_nst_ID002.wav"]
    for i, name in enumerate(names):
        (clips / f"{i}.wav").write_bytes(clip(name).read_bytes())
    (clips / "notes.txt").write_text("not audio")
    joined = joined_clips(clips, tmp_path / "work")
    assert joined is not None and joined.parent == tmp_path / "work"
    pcm = load_pcm(joined)
    first, second = (load_pcm(clip(n)) for n in names)
    assert pcm.size == first.size + second.size + 2 * SAMPLE_RATE
    assert np.array_equal(pcm[: first.size], first)
    assert not pcm[first.size : first.size + SAMPLE_RATE].any()
    assert np.array_equal(pcm[first.size + SAMPLE_RATE : -SAMPLE_RATE], second)
    assert joined_clips(tmp_path / "missing", tmp_path / "work") is None


def test_bench_without_audio_or_clips_is_a_usage_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["bench", "--clips", str(empty), "--out", str(tmp_path / "out"), "--no-warmup"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "no recordings in" in result.output and "--clips" in result.output


@pytest.mark.heavy
def test_bench_embedded_in_process(env: None, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ["bench", "--durations", "10s,20s", "--modes", "asr", "--concurrency", "1,2"]
    args += ["--audio", str(clip("en/jfk.flac")), "--out", str(out), "--language", "en"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    raw = check_report(out, ["10 s", "20 s"], n_requests=2 * (1 + 2))
    assert raw["target"] == "in-process"
    assert raw["service"]["engine"]["engine"] == "embedded"
    # In-process, the service's RSS is this process's: sampled all along.
    assert all(s["rss"] for s in raw["samples"])
    assert {r["concurrency"] for r in raw["requests"]} == {1, 2}
    assert_png(out / "memory_over_time.png")


@pytest.mark.heavy
def test_bench_standin_backend_over_url(env: None, settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    with StandIn(data_dir=settings.data_dir) as si:
        service = settings.updated(backends=[BackendConfig(url=si.url)])
        with serve_in_thread(create_app(service)) as url:
            deadline = time.monotonic() + 10
            while httpx.get(f"{url}/ready").status_code != 200:
                assert time.monotonic() < deadline, "service never ready"
                time.sleep(0.1)
            args = ["bench", "--url", url, "--durations", "10s,30s", "--modes", "asr"]
            args += ["--concurrency", "1", "--audio", str(clip("en/jfk.flac"))]
            result = CliRunner().invoke(app, [*args, "--out", str(out)])
        assert result.exit_code == 0, result.output
        # 30 s of audio is two parts of ≤ 25 s, all within the stand-in's rules.
        assert si.stats.violations == []
        assert si.stats.completed >= 2
    raw = check_report(out, ["10 s", "30 s"], n_requests=2)
    assert raw["target"] == url
    assert raw["service"]["model"] == "Step-Audio-R1.1"
    # The service listens on loopback in this very process: its RSS is found by its port.
    assert "loopback port" in raw["sampling"]["rss"]
    assert all(s["rss"] for s in raw["samples"])
    md = (out / "BENCHMARK.md").read_text(encoding="utf-8")
    assert "Not sampled: no GPU" in md or "GPU 0" in md
