"""The `stepaudio` command as a user runs it: process files, inspect audio, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from stepaudio.cli import app
from stepaudio.testing.encode import write_audio
from stepaudio.testing.longaudio import build
from tests.helpers import clip, reference, wer

JFK = reference({"ref": "en/jfk.txt"})


@pytest.fixture
def runner(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STEPAUDIO_DATA_DIR", str(data_dir))
    return CliRunner()


@pytest.mark.model
def test_process_prints_the_api_json(runner: CliRunner):
    result = runner.invoke(app, ["process", str(clip("en/jfk.flac")), "-m", "asr", "-f", "json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert {"status", "answer", "thinking", "full_response", "elapsed_time"} <= body.keys()
    assert wer([JFK], [body["answer"]]) <= 0.1 and body["windows"] == 1


@pytest.mark.model
def test_long_file_in_windows_as_subtitles(runner: CliRunner, tmp_path: Path):
    pcm, placements = build([clip("en/jfk.flac"), clip("en/sr_english.wav")], min_seconds=45)
    path = write_audio(pcm, tmp_path / "long.mp3")
    out = tmp_path / "long.srt"
    args = ["process", str(path), "-m", "asr", "--segment-duration", "15", "-f", "srt"]
    result = runner.invoke(app, [*args, "--language", "en", "-o", str(out)])
    assert result.exit_code == 0, result.output
    cues = out.read_text().strip().split("\n\n")
    assert len(cues) >= 4 and cues[0].startswith("1\n00:00:00,000 --> ")
    last_start = cues[-1].split("\n")[1].split(" --> ")[0]
    assert last_start > "00:00:30"  # times are in the whole recording, not the window


def test_info_json_and_bad_files(runner: CliRunner, tmp_path: Path):
    result = runner.invoke(app, ["info", str(clip("en/jfk.flac")), "-f", "json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["duration"] == pytest.approx(11.0, abs=0.05) and info["windows"] == 1
    bad = tmp_path / "notes.mp3"
    bad.write_text("not audio")
    for command in (["info", str(bad)], ["process", str(bad), "-m", "asr"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert "invalid_audio" in result.output


def test_silence_is_an_empty_result_with_a_warning(runner: CliRunner, tmp_path: Path):
    path = write_audio(np.zeros(16000 * 2, dtype=np.int16), tmp_path / "quiet.wav")
    result = runner.invoke(app, ["process", str(path), "-m", "asr"])
    assert result.exit_code == 0 and "warning: no_speech" in result.output


@pytest.mark.model
def test_voices_from_the_command_line(runner: CliRunner, tmp_path: Path):
    """Enrol, list, name in a transcript, remove: the keyless owner's library."""
    from stepaudio.testing.longaudio import load_pcm

    jfk = load_pcm(clip("en/jfk.flac"))
    sample = write_audio(jfk[: 16000 * 5], tmp_path / "jfk-sample.wav")
    added = runner.invoke(app, ["voices", "add", "JFK", str(sample)])
    assert added.exit_code == 0, added.output
    assert "JFK" in runner.invoke(app, ["voices", "list"]).stdout
    talk = write_audio(jfk[16000 * 5 :], tmp_path / "jfk-rest.wav")
    result = runner.invoke(
        app, ["process", str(talk), "-m", "asr", "--voices", "JFK", "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    speakers = {s["speaker"] for s in json.loads(result.stdout)["segments"]}
    assert speakers == {"JFK"}
    unknown = runner.invoke(app, ["process", str(talk), "-m", "asr", "--voices", "Nobody"])
    assert unknown.exit_code == 2 and "unknown_voice" in unknown.output
    silence = write_audio(np.zeros(16000 * 3, np.int16), tmp_path / "quiet.wav")
    refused = runner.invoke(app, ["voices", "add", "Quiet", str(silence)])
    assert refused.exit_code == 2 and "too_little_speech" in refused.output
    assert runner.invoke(app, ["voices", "remove", "JFK"]).exit_code == 0
    assert "JFK" not in runner.invoke(app, ["voices", "list"]).stdout
