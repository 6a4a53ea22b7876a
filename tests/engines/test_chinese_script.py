"""The script a request's Chinese language code asks for (no model loaded)."""

from __future__ import annotations

import pytest

from stepaudio.engines.base import ModelOutput, Segment, Word
from stepaudio.engines.chinese_script import (
    SIMPLIFIED,
    in_script,
    punctuated,
    punctuated_output,
    split_language,
)


def test_chinese_codes_tell_whisper_zh_and_keep_the_script() -> None:
    assert split_language(None) == (None, None)
    assert split_language("zh") == ("zh", SIMPLIFIED)
    assert split_language("zh-CN") == ("zh", SIMPLIFIED)
    assert split_language("zh_Hans") == ("zh", SIMPLIFIED)
    assert split_language("zh-TW") == ("zh", "zh-tw")
    assert split_language("zh-Hant") == ("zh", "zh-tw")
    assert split_language("ZH-HK") == ("zh", "zh-hk")
    # Other codes, made-up Chinese ones included, are Whisper's to accept or refuse.
    assert split_language("en") == ("en", None)
    assert split_language("zh-xx") == ("zh-xx", None)


def test_text_and_words_are_written_in_one_script() -> None:
    words = [Word("律師", 0.0, 0.5), Word("楊春", 0.5, 1.0)]
    mixed = [Segment(0.0, 1.0, "律師楊春", words=words), Segment(1.0, 2.0, "大块文章")]
    simplified = in_script(mixed, SIMPLIFIED)
    assert [s.text for s in simplified] == ["律师杨春", "大块文章"]
    assert [w.word for w in simplified[0].words or []] == ["律师", "杨春"]
    assert simplified[1].words is None
    traditional = in_script(mixed, "zh-tw")
    assert [s.text for s in traditional] == ["律師楊春", "大塊文章"]
    # Times and the rest of the segment are untouched.
    assert [(s.start, s.end) for s in traditional] == [(0.0, 1.0), (1.0, 2.0)]


def test_marks_after_chinese_become_full_width_and_others_stay() -> None:
    [s] = in_script(
        [Segment(0.0, 1.0, "律師楊春淹井,大塊文章的底色. 好嗎? 4.5 分, AI, 模型。")], SIMPLIFIED
    )
    assert s.text == "律师杨春淹井，大块文章的底色。好吗？4.5 分，AI, 模型。"


@pytest.mark.parametrize(
    ("heard", "written"),
    [
        ("广州市 佛地产 中间协会分析", "广州市，佛地产，中间协会分析。"),
        ("你好，你好", "你好，你好。"),
        ("他说：好吗？", "他说：好吗？"),  # already ends with a mark
        ("用 Whisper 模型 转写", "用 Whisper 模型，转写。"),  # only between Han characters
        ("Whisper", "Whisper"),
        ("", ""),
    ],
)
def test_mandarin_pauses_become_commas_and_a_segment_ends_with_a_stop(heard, written):
    assert punctuated(Segment(0, 1, heard, language="zh")).text == written


def test_a_windows_mandarin_is_punctuated_whichever_engine_heard_it():
    heard = ModelOutput(
        "广州市 佛地产 Hello world",
        segments=[Segment(0, 1, "广州市 佛地产", language="zh"), Segment(1, 2, "Hello world")],
        language="zh",
    )
    out = punctuated_output(heard)
    assert [s.text for s in out.segments] == ["广州市，佛地产。", "Hello world"]
    assert out.text == "广州市，佛地产。 Hello world"
    # A remote model's window in one piece, no segments.
    assert punctuated_output(ModelOutput("你好 你好", language="zh")).text == "你好，你好。"
    # A translation from Mandarin: its source is punctuated, the English left alone.
    translated = ModelOutput("Hello hello", source="你好 你好", language="zh")
    assert punctuated_output(translated).text == "Hello hello"
    assert punctuated_output(translated).source == "你好，你好。"
    english = ModelOutput("hello there", segments=[Segment(0, 1, "hello there", language="en")])
    assert punctuated_output(english) is english
    # An engine that names no language: Mandarin by its characters.
    assert punctuated_output(ModelOutput("你好 你好")).text == "你好，你好。"
    assert punctuated_output(ModelOutput("Step 模型 good day")).text == "Step 模型 good day"
