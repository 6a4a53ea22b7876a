"""The voice library's store: per key, names unique per key, prints only, a quota."""

from __future__ import annotations

import numpy as np
import pytest

from stepaudio.errors import Conflict, InvalidParameter, NotFound, QueueFull
from stepaudio.tasks import voices


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=192).astype(np.float32)
    return v / np.linalg.norm(v)


def test_enrol_list_rename_delete(make_store):
    store = make_store()
    alice = voices.enrol(store, "k1", "Alice", unit(1), 12.5)
    voices.enrol(store, "k1", "Bob", unit(2), 8.0)
    assert [v.name for v in voices.listed(store, "k1")] == ["Alice", "Bob"]
    assert voices.rename(store, "k1", alice.voice_id, "Alicia").name == "Alicia"
    prints = voices.prints(store, "k1", ["Alicia"])
    assert list(prints) == ["Alicia"] and np.allclose(prints["Alicia"], unit(1))
    assert set(voices.prints(store, "k1", [voices.ALL])) == {"Alicia", "Bob"}
    voices.remove(store, "k1", alice.voice_id)
    assert [v.name for v in voices.listed(store, "k1")] == ["Bob"]


def test_another_key_cannot_see_match_rename_or_delete(make_store):
    store = make_store()
    alice = voices.enrol(store, "k1", "Alice", unit(1), 12.5)
    assert voices.listed(store, "k2") == []
    assert voices.prints(store, "k2", [voices.ALL]) == {}
    with pytest.raises(InvalidParameter) as unknown:
        voices.prints(store, "k2", ["Alice"])
    assert unknown.value.code == "unknown_voice"
    with pytest.raises(NotFound):
        voices.rename(store, "k2", alice.voice_id, "Mallory")
    with pytest.raises(NotFound):
        voices.remove(store, "k2", alice.voice_id)
    assert [v.name for v in voices.listed(store, "k1")] == ["Alice"]
    # The same name is another key's own business.
    voices.enrol(store, "k2", "Alice", unit(3), 5.0)
    assert np.allclose(voices.prints(store, "k1", ["Alice"])["Alice"], unit(1))


def test_a_name_is_one_voice_per_key(make_store):
    store = make_store()
    voices.enrol(store, "k1", "Alice", unit(1), 12.5)
    bob = voices.enrol(store, "k1", "Bob", unit(2), 8.0)
    with pytest.raises(Conflict):
        voices.enrol(store, "k1", "Alice", unit(3), 5.0)
    with pytest.raises(Conflict):
        voices.rename(store, "k1", bob.voice_id, "Alice")


def test_a_key_keeps_a_bounded_library(make_store, monkeypatch):
    monkeypatch.setattr(voices, "MAX_VOICES", 2)
    store = make_store()
    voices.enrol(store, "k1", "A1", unit(1), 5.0)
    voices.enrol(store, "k1", "A2", unit(2), 5.0)
    with pytest.raises(QueueFull):
        voices.enrol(store, "k1", "A3", unit(3), 5.0)
    voices.enrol(store, "k2", "B1", unit(4), 5.0)  # another key's share is its own
