"""The languages a translation may be asked for, by any of their names.

The text models (Qwen2.5 in the embedded engine, Step-Audio-R1.1 on its backends) write
these languages (Qwen2.5's model card lists them); a target outside them gets a 400 that
names ``target_lang`` and lists them, not two minutes of invented text. Each is known by
its ISO code, its English name, its Chinese name and its own name, in any case. The
spoken ``language`` takes the same names, and any other code is left to Whisper (which
hears 99 languages, more than the text models write).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str
    """ISO 639-1, with a script or region for the variants (``zh-TW``)."""
    english: str
    chinese: str
    native: str
    aliases: tuple[str, ...] = ()


LANGUAGES: tuple[Language, ...] = (
    Language("en", "English", "英语", "English", ("英文",)),
    Language(
        "zh",
        "Chinese",
        "中文",
        "中文",
        ("汉语", "普通话", "简体中文", "mandarin", "zh-cn", "zh-hans", "chinese (simplified)"),
    ),
    Language(
        "zh-TW",
        "Chinese (Traditional)",
        "繁体中文",
        "繁體中文",
        ("zh-hant", "zh-hk", "traditional chinese", "中文（繁体）"),
    ),
    Language("yue", "Cantonese", "粤语", "粵語"),
    Language("ja", "Japanese", "日语", "日本語", ("日文",)),
    Language("ko", "Korean", "韩语", "한국어", ("韩文",)),
    Language("fr", "French", "法语", "Français", ("法文",)),
    Language("de", "German", "德语", "Deutsch", ("德文",)),
    Language("es", "Spanish", "西班牙语", "Español"),
    Language("pt", "Portuguese", "葡萄牙语", "Português", ("pt-br", "pt-pt")),
    Language("it", "Italian", "意大利语", "Italiano"),
    Language("ru", "Russian", "俄语", "Русский", ("俄文",)),
    Language("ar", "Arabic", "阿拉伯语", "العربية"),
    Language("vi", "Vietnamese", "越南语", "Tiếng Việt"),
    Language("th", "Thai", "泰语", "ไทย"),
    Language("id", "Indonesian", "印度尼西亚语", "Bahasa Indonesia", ("印尼语",)),
    Language("ms", "Malay", "马来语", "Bahasa Melayu"),
    Language("tr", "Turkish", "土耳其语", "Türkçe"),
    Language("nl", "Dutch", "荷兰语", "Nederlands"),
    Language("pl", "Polish", "波兰语", "Polski"),
    Language("uk", "Ukrainian", "乌克兰语", "Українська"),
    Language("cs", "Czech", "捷克语", "Čeština"),
    Language("sv", "Swedish", "瑞典语", "Svenska"),
    Language("da", "Danish", "丹麦语", "Dansk"),
    Language("fi", "Finnish", "芬兰语", "Suomi"),
    Language("no", "Norwegian", "挪威语", "Norsk", ("nb",)),
    Language("el", "Greek", "希腊语", "Ελληνικά"),
    Language("he", "Hebrew", "希伯来语", "עברית"),
    Language("hi", "Hindi", "印地语", "हिन्दी"),
    Language("bn", "Bengali", "孟加拉语", "বাংলা"),
    Language("fa", "Persian", "波斯语", "فارسی"),
    Language("ro", "Romanian", "罗马尼亚语", "Română"),
    Language("hu", "Hungarian", "匈牙利语", "Magyar"),
)

_BY_NAME: dict[str, Language] = {
    name.casefold(): language
    for language in LANGUAGES
    for name in (
        language.code,
        language.english,
        language.chinese,
        language.native,
        *language.aliases,
    )
}


def find(value: str, *, variants: bool = True) -> Language | None:
    """The language ``value`` names (a code, or a name in English, Chinese or itself);
    with ``variants``, a regional variant (``es-419``, ``Português (Brasil)``) is its
    language (a target: the text model writes the language)."""
    name = value.strip().casefold()
    if not variants:
        return _BY_NAME.get(name)
    base = re.sub(r"\s*[(（].*$", "", name).split("-")[0].split("_")[0]
    return _BY_NAME.get(name) or _BY_NAME.get(base)


def listed() -> str:
    """The languages, for an error message: ``English (en), Chinese (zh), …``."""
    return ", ".join(f"{language.english} ({language.code})" for language in LANGUAGES)
