"""Open-set matching of found voices to known ones: a threshold, one to one."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stepaudio.diarize.identify import MATCH_THRESHOLD, match


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def basis(n: int) -> np.ndarray:
    return np.eye(192, dtype=np.float32)[:n]


def mixed(a: np.ndarray, b: np.ndarray, cosine: float) -> np.ndarray:
    """A unit vector at ``cosine`` to unit ``a`` (``b`` orthogonal to ``a``)."""
    return cosine * a + np.sqrt(1 - cosine**2) * b


def test_close_voices_get_their_names_a_stranger_none():
    e = basis(5)
    known = {"Alice": e[0], "Bob": e[1]}
    found = np.stack([mixed(e[0], e[2], 0.9), mixed(e[1], e[3], 0.8), mixed(e[0], e[4], 0.5)])
    out = match(found, known)
    assert out[0] == ("Alice", np.float32(0.9)) or out[0][0] == "Alice"
    assert out[1][0] == "Bob" and abs(out[1][1] - 0.8) < 1e-5
    assert 2 not in out  # too far from anyone: keeps its letter


def test_one_name_never_goes_to_two_voices():
    e = basis(4)
    found = np.stack([mixed(e[0], e[2], 0.9), mixed(e[0], e[3], 0.85)])
    out = match(found, {"Alice": e[0]})
    assert [name for name, _ in out.values()] == ["Alice"] and 0 in out


def test_a_voice_never_gets_two_names():
    e = basis(3)
    out = match(np.stack([e[0]]), {"Alice": mixed(e[0], e[1], 0.9), "Twin": mixed(e[0], e[2], 0.9)})
    assert len(out) == 1


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 6),
    st.integers(0, 2**32 - 1),
)
def test_any_voices_one_to_one_and_above_the_line(n_found: int, n_known: int, seed: int):
    rng = np.random.default_rng(seed)
    base = unit(rng.normal(size=(max(n_found, n_known), 192)))
    found = unit(base[:n_found] + rng.normal(scale=0.3, size=(n_found, 192)))
    known = {f"k{i}": unit(base[i] + rng.normal(scale=0.3, size=192)) for i in range(n_known)}
    out = match(found, known)
    names = [name for name, _ in out.values()]
    assert len(names) == len(set(names))
    assert all(score >= MATCH_THRESHOLD for _, score in out.values())
    for row, (name, score) in out.items():
        assert abs(float(found[row] @ known[name]) - score) < 1e-4
