"""Languages by any of their names: targets validated, spoken languages mapped to codes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from stepaudio import languages
from stepaudio.params import ProcessParams


@pytest.mark.parametrize(
    "name, english",
    [
        ("de", "German"),
        ("DE", "German"),
        ("Deutsch", "German"),
        ("德语", "German"),
        ("中文", "Chinese"),
        ("Mandarin", "Chinese"),
        ("zh-CN", "Chinese"),
        ("zh-TW", "Chinese (Traditional)"),
        ("繁體中文", "Chinese (Traditional)"),
        ("pt-BR", "Portuguese"),
        ("Português (Brasil)", "Portuguese"),
        ("es-419", "Spanish"),
        ("日本語", "Japanese"),
        (" english ", "English"),
    ],
)
def test_a_target_by_any_name_is_kept_as_its_english_name(name: str, english: str) -> None:
    assert ProcessParams(target_lang=name).target_lang == english


@pytest.mark.parametrize("name", ["Klingon", "Elvish", "xx", "English please", "zz-ZZ"])
def test_a_language_the_model_does_not_write_is_refused_with_the_list(name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ProcessParams(target_lang=name)
    assert "German (de)" in str(refused.value) and "target_lang" in str(refused.value)


@pytest.mark.parametrize(
    "name, code",
    [
        ("english", "en"),
        ("中文", "zh"),
        ("Chinese (Traditional)", "zh-TW"),
        ("zh-Hant", "zh-TW"),
        ("sw", "sw"),
        ("en", "en"),
    ],
)
def test_a_spoken_language_by_name_becomes_its_code(name: str, code: str) -> None:
    assert ProcessParams(language=name).language == code


def test_every_language_is_found_by_each_of_its_names() -> None:
    for language in languages.LANGUAGES:
        for name in (language.code, language.english, language.chinese, language.native):
            assert languages.find(name) is language, name


@given(st.text(max_size=30))
def test_any_text_is_found_or_refused_never_an_exception(text: str) -> None:
    found = languages.find(text)
    assert found is None or found in languages.LANGUAGES


def test_an_unknown_variant_of_a_spoken_language_is_not_guessed() -> None:
    assert ProcessParams(language="zh-xx").language == "zh-xx"  # refused later, naming it
