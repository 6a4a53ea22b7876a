"""OpenAI's ``timestamp_granularities[]``, ``diarized_json`` and known speakers in our
parameters' terms.

The SDK sends the granularities as repeated ``timestamp_granularities[]`` form fields;
plain ``timestamp_granularities`` (curl users, other clients) is taken too.
"""

from __future__ import annotations

import base64

from stepaudio.errors import InvalidParameter
from stepaudio.params import MAX_KNOWN_SPEAKERS, MAX_REFERENCE_BYTES

GRANULARITIES = frozenset({"word", "segment"})


def word_times(granularities: list[str], response_format: str) -> bool:
    """Whether word times were asked for; refuses what OpenAI refuses (an unknown
    granularity, word times in a format that cannot carry them)."""
    asked = {g.strip() for g in granularities}
    unknown = sorted(asked - GRANULARITIES)
    if unknown:
        raise InvalidParameter(
            f"Unknown timestamp granularity {unknown[0]!r}; use 'word' and/or 'segment'.",
            param="timestamp_granularities",
        )
    if asked and response_format != "verbose_json":
        raise InvalidParameter(
            "timestamp_granularities needs response_format 'verbose_json'.",
            param="timestamp_granularities",
        )
    return "word" in asked


def known_speakers(names: list[str], references: list[str]) -> dict[str, bytes]:
    """OpenAI's ``known_speaker_names[]`` with ``known_speaker_references[]`` (audio as
    data URLs, ``data:audio/wav;base64,...``), paired in order."""
    if len(names) != len(references):
        raise InvalidParameter(
            "known_speaker_names and known_speaker_references must pair one to one.",
            param="known_speaker_references",
        )
    if len(names) > MAX_KNOWN_SPEAKERS:
        raise InvalidParameter(
            f"At most {MAX_KNOWN_SPEAKERS} known speakers.", param="known_speaker_names"
        )
    if len(set(names)) != len(names):
        raise InvalidParameter("Speaker names must differ.", param="known_speaker_names")
    out: dict[str, bytes] = {}
    for name, url in zip(names, references, strict=True):
        head, _, data = url.partition(",")
        if not head.startswith("data:") or not head.endswith(";base64"):
            raise InvalidParameter(
                "A reference must be a data URL: data:audio/...;base64,...",
                param="known_speaker_references",
            )
        try:
            clip = base64.b64decode(data, validate=True)
        except ValueError as exc:
            raise InvalidParameter(
                "A reference's data is not valid base64.", param="known_speaker_references"
            ) from exc
        if not clip or len(clip) > MAX_REFERENCE_BYTES:
            raise InvalidParameter(
                f"A reference clip must be 1 to {MAX_REFERENCE_BYTES} bytes.",
                param="known_speaker_references",
            )
        out[name] = clip
    return out
