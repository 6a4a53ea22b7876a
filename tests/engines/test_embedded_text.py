"""The embedded text model's sampling, decided from the request alone (no model loaded)."""

from __future__ import annotations

from stepaudio.engines.embedded import _text_temperature
from stepaudio.params import Mode, ProcessParams


def test_unasked_text_tasks_are_greedy_and_asked_ones_stay_cool() -> None:
    for mode in (Mode.UNDERSTAND, Mode.S2T, Mode.TRANSLATE):
        # The modes' own defaults (0.7 for answers) are for Step-Audio, not a 1.5B model.
        assert _text_temperature(ProcessParams(mode=mode)) == 0.0
    assert _text_temperature(ProcessParams(mode=Mode.UNDERSTAND, temperature=0.2)) == 0.2
    assert _text_temperature(ProcessParams(mode=Mode.UNDERSTAND, temperature=1.5)) == 0.3
