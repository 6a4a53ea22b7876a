"""pipeline/formats.py: one result rendered in every face's formats (no audio, no model)."""

from __future__ import annotations

import json

import pytest

from stepaudio.params import Mode
from stepaudio.pipeline.formats import Format, clock, media_type, render, timestamp
from stepaudio.pipeline.result import ProcessResult

USAGE = {"audio_seconds": 3662.0, "prompt_tokens": 10, "completion_tokens": 4}


def result(mode: Mode = Mode.ASR, **extra) -> ProcessResult:
    values = {
        "answer": "Ask not. 问你",
        "thinking": "",
        "full_response": "Ask not. 问你",
        "elapsed_time": 1.5,
        "mode": mode,
        "segments": [
            {
                "start": 0.0,
                "end": 1.25,
                "text": "Ask not.",
                "seek": 0,
                "tokens": [50364, 12320],
                "temperature": 0.0,
                "avg_logprob": -0.25,
                "compression_ratio": 0.9,
                "no_speech_prob": 0.01,
            },
            {"start": 3661.4996, "end": 3662.0, "text": "问你"},
        ],
        "language": "en",
        "audio": {"duration": 3662.0},
        "usage": USAGE,
        "timings": {"decode": 0.1, "model": 1.4, "total": 1.5},
        "engine": "embedded",
        "windows": 2,
    }
    return ProcessResult.model_validate({**values, **extra})


def test_clocks():
    assert timestamp(3661.4996) == "01:01:01.500"
    assert timestamp(59.9999, ",") == "00:01:00,000"
    assert clock(3661.5) == "01:01:02"  # rounded to the second
    assert clock(0.4) == "00:00:00"


def test_subtitles():
    assert render(result(), Format.SRT) == (
        "1\n00:00:00,000 --> 00:00:01,250\nAsk not.\n\n2\n01:01:01,500 --> 01:01:02,000\n问你\n"
    )
    assert render(result(), "vtt") == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.250\nAsk not.\n\n01:01:01.500 --> 01:01:02.000\n问你\n"
    )


def test_text_and_json():
    r = result()
    assert render(r, "txt") == render(r, "text") == "Ask not. 问你"
    assert json.loads(render(r, "json")) == r.model_dump(mode="json")
    assert "问你" in render(r, "json")  # not \\u-escaped


def test_openai_shapes():
    assert render(result(), Format.OPENAI_JSON) == (
        '{"text":"Ask not. 问你","usage":{"type":"duration","seconds":3662}}'
    )
    # Seconds rounded up, as OpenAI bills them; translations carry no usage.
    assert json.loads(render(result(usage={**USAGE, "audio_seconds": 11.02}), Format.OPENAI_JSON))[
        "usage"
    ] == {"type": "duration", "seconds": 12}
    assert render(result(Mode.TRANSLATE), Format.OPENAI_JSON) == '{"text":"Ask not. 问你"}'
    verbose = json.loads(render(result(), "verbose_json"))
    assert verbose["task"] == "transcribe" and verbose["duration"] == 3662.0
    assert verbose["usage"] == {"type": "duration", "seconds": 3662}
    # Whisper's own measures where the engine gave them…
    assert verbose["segments"][0]["avg_logprob"] == -0.25
    assert verbose["segments"][0]["tokens"] == [50364, 12320]
    assert verbose["language"] == "en" and verbose["text"] == "Ask not. 问你"
    assert [s["id"] for s in verbose["segments"]] == [0, 1]
    assert verbose["segments"][1] == {
        "id": 1,
        "seek": 0,
        "start": 3661.4996,
        "end": 3662.0,
        "text": "问你",
        # … neutral values where it gave none.
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": 0.0,
        "compression_ratio": 0.0,
        "no_speech_prob": 0.0,
    }
    translated = json.loads(render(result(Mode.TRANSLATE), "verbose_json"))
    assert translated["task"] == "translate" and "usage" not in translated


def test_markdown_per_mode():
    s2t = render(result(Mode.S2T, summary="A plea.", thinking="hmm"), Format.MD)
    assert s2t.startswith("# Transcript and summary\n\n## Summary\n\nA plea.\n")
    assert "- **[01:01:01]** 问你" in s2t  # truncated to the second, never later
    assert "## Answer" not in s2t
    assert "<details><summary>Reasoning</summary>\n\nhmm\n" in s2t
    translated = render(result(Mode.TRANSLATE), "md")
    assert translated.startswith("# Translation into ")
    assert "## Translation\n\nAsk not. 问你" in translated and "## Transcript" not in translated
    asked = result(Mode.UNDERSTAND)
    asked.params = {"question": "Who speaks?"}
    answer = render(asked, "md")
    assert answer.startswith("# Answer\n\n**Question:** Who speaks?\n")


def test_media_types_and_unknown_formats():
    assert media_type("vtt") == "text/vtt" and media_type("srt") == "text/plain"
    assert media_type(Format.VERBOSE_JSON) == "application/json"
    with pytest.raises(ValueError):
        render(result(), "docx")


def spoken(words: bool = False) -> ProcessResult:
    """Three segments by two speakers (A twice in a row), with word times or not."""
    segs = [
        (0.0, 1.0, "Hello there.", "A"),
        (1.0, 2.0, "How are you?", "A"),
        (2.5, 3.0, "Fine.", "B"),
    ]
    segments = []
    for start, end, text, who in segs:
        seg = {"start": start, "end": end, "text": text, "speaker": who}
        if words:
            parts = text.split()
            step = (end - start) / len(parts)
            seg["words"] = [
                {"word": w, "start": start + i * step, "end": start + (i + 1) * step}
                for i, w in enumerate(parts)
            ]
        segments.append(seg)
    text = "Hello there. How are you? Fine."
    return result(answer=text, full_response=text, segments=segments)


def test_speakers_in_every_format():
    from openai.types.audio import TranscriptionDiarized

    r = spoken()
    assert render(r, "vtt").split("\n\n")[1:] == [
        "00:00:00.000 --> 00:00:01.000\n<v Speaker A>Hello there.",
        "00:00:01.000 --> 00:00:02.000\n<v Speaker A>How are you?",
        "00:00:02.500 --> 00:00:03.000\n<v Speaker B>Fine.\n",
    ]
    assert "1\n00:00:00,000 --> 00:00:01,000\nSpeaker A: Hello there.\n" in render(r, "srt")
    # The transcript as a dialogue: one paragraph per turn.
    assert render(r, "txt") == "Speaker A: Hello there. How are you?\n\nSpeaker B: Fine."
    assert "- **[00:00:02] Speaker B:** Fine." in render(r, "md")
    diarized = TranscriptionDiarized.model_validate_json(render(r, "diarized_json"))
    assert [(s.id, s.speaker, s.text) for s in diarized.segments] == [
        ("seg_0", "A", "Hello there."),
        ("seg_1", "A", "How are you?"),
        ("seg_2", "B", "Fine."),
    ]
    assert diarized.task == "transcribe" and diarized.text == r.answer
    assert json.loads(render(r, "json"))["segments"][2]["speaker"] == "B"
    assert media_type("diarized_json") == "application/json"
    # A known speaker's name is shown as it is; a hostile one cannot break a cue.
    named = spoken()
    named.segments[0].speaker = "Alice <b>\nWEBVTT"
    assert "<v Alice b WEBVTT>Hello there." in render(named, "vtt")


def test_words_in_verbose_json():
    from openai.types.audio import TranscriptionVerbose

    verbose = TranscriptionVerbose.model_validate_json(render(spoken(words=True), "verbose_json"))
    assert [w.word for w in verbose.words or []] == [
        "Hello",
        "there.",
        "How",
        "are",
        "you?",
        "Fine.",
    ]
    assert verbose.words and verbose.words[-1].start == 2.5
    # No word times given: no "words" key (OpenAI's verbose_json without the granularity).
    assert "words" not in json.loads(render(spoken(), "verbose_json"))
