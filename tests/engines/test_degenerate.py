"""The degenerate-output detector: loops in English and in Chinese, cut text, rates."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stepaudio.engines.degenerate import (
    complete_part,
    ends_complete,
    find_loop,
    implausible_rate,
    in_target_script,
    max_repeats_in,
    tokens,
    untranslated_cjk,
)
from tests.helpers import clip, reference

JFK = reference({"ref": "en/jfk.txt"})
HAN = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8)


def sentence(words: list[str]) -> str:
    return " ".join(words).capitalize() + "."


@given(st.lists(WORDS, min_size=4, max_size=14, unique=True), st.integers(3, 15))
def test_a_sentence_said_again_and_again_is_a_loop(words: list[str], times: int) -> None:
    loop = find_loop(" ".join([sentence(words)] * times))
    assert loop is not None and loop.count >= 3


@given(st.lists(HAN, min_size=10, max_size=30, unique=True), st.integers(3, 10))
def test_chinese_loops_are_found_without_spaces(chars: list[str], times: int) -> None:
    # (Shorter clauses said thrice, "好的，好的，好的", are speech, not loops.)
    text = ("".join(chars) + "，") * times
    assert find_loop(text) is not None


@given(st.lists(WORDS, min_size=4, max_size=14, unique=True), st.integers(1, 3))
def test_repeats_up_to_the_allowed_count_pass(words: list[str], times: int) -> None:
    text = " ".join([sentence(words)] * times)
    assert find_loop(text, max_repeats=max(2, times)) is None
    assert max_repeats_in(text) == times or times < 3 and max_repeats_in(text) <= times


@given(st.lists(WORDS, min_size=1, max_size=200, unique=True))
def test_text_without_repetition_is_no_loop(words: list[str]) -> None:
    assert find_loop(" ".join(words)) is None


@given(st.lists(HAN, min_size=1, max_size=200, unique=True))
def test_chinese_without_repetition_is_no_loop(chars: list[str]) -> None:
    assert find_loop("".join(chars)) is None


@given(st.sampled_from(["the", "哈", "ok so"]), st.integers(8, 40))
def test_a_word_stuck_on_repeat_is_a_loop(unit: str, times: int) -> None:
    assert find_loop(" ".join([unit] * times)) is not None


def test_the_reported_failures_are_loops() -> None:
    # Issue 11: SmolLM2's translation of jfk.flac into Chinese.
    smol = "这是一段关于全英文的词板的文字，它讲述了全英文的词板的用途。" * 6 + "将提"
    assert find_loop(smol) is not None
    # Issue 15: Whisper's transcript of jfk.flac said three times, with 13 repeats.
    assert find_loop(" ".join([JFK] * 13), max_repeats=3) is not None
    assert implausible_rate(" ".join([JFK] * 13), 33.0)


def test_real_text_is_not_a_loop() -> None:
    for name in ("en/sonnet_1.txt", "en/sonnet_2.txt", "zh/thchs30_A11_0.txt"):
        assert find_loop(clip(name).read_text(encoding="utf-8")) is None
    good = "所以，美国的朋友们，不要问你的国家能为你做什么，而是要问你能为你的国家做些什么。"
    assert find_loop(good) is None
    assert find_loop("你好你好") is None and find_loop("No, no, no.") is None


def test_genuinely_repeated_speech_has_a_plausible_rate() -> None:
    assert not implausible_rate(" ".join([JFK] * 3), 33.0)
    assert not implausible_rate("", 0.0) and implausible_rate("words", 0.0)


@given(st.text(alphabet="ab 好的。.!?…”’\"'x\n", max_size=300))
def test_complete_part_is_a_prefix_ending_a_sentence(text: str) -> None:
    part = complete_part(text)
    assert text.startswith(part) or text.strip().startswith(part)
    assert part == "" or ends_complete(part)


def test_cut_words_are_not_complete() -> None:
    assert not ends_complete("…不要问你的国家将提")
    assert not ends_complete("He asks them to think about what they can do for")
    assert ends_complete("He asks what they can do for their country.")
    assert ends_complete("他问：“你能为国家做什么？”")
    assert complete_part("第一句。第二句没有写完") == "第一句。"


def test_tokens_split_chinese_by_character() -> None:
    assert tokens("Hello, 世界 abc世") == ["hello", "世", "界", "abc", "世"]


def test_target_script() -> None:
    assert in_target_script("所以，美国同胞们，JFK说……", "Chinese")
    assert not in_target_script("So, my fellow Americans.", "Chinese")
    assert not in_target_script("甚至出现交易几乎停滞的情况", "English")
    assert in_target_script("Even trading almost stopped.", "en")
    assert not in_target_script("", "English")
    assert in_target_script("whatever", "Klingon")  # a script we do not know: not judged


def test_chinese_left_in_an_english_translation_is_found() -> None:
    # Seen from the 0.5B model: one word of the source kept as it was.
    text = "First, we had a performance in the summer, and this was a歌舞 event."
    assert in_target_script(text, "English")  # most letters are Latin...
    assert untranslated_cjk(text, "English") == "歌舞"  # ...but a word was not translated
    assert untranslated_cjk("Beijing and Shanghai.", "en") == ""
    assert untranslated_cjk("北京和上海", "Chinese") == ""  # the target's own script
    assert untranslated_cjk("北京", "Klingon") == ""  # not judged
    # Full-width punctuation is no word left behind (it was, and a fill-in found no word).
    assert untranslated_cjk("Hello， world。", "English") == ""
    assert untranslated_cjk("a歌舞，b东京タワー", "en") == "歌舞东京タワー"
