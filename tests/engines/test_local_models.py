"""The Qwen GGUF assembled from its PyPI parts: once, checked against the pinned hash,
never half a model, and a tampered file is not trusted because of its stamp."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from stepaudio.engines import local_models
from stepaudio.engines.local_models import QWEN_05B, ModelMissing, resolve_text_model, split_gguf


@pytest.mark.model
def test_assembled_once_then_trusted_by_its_stamp(tmp_path: Path, monkeypatch):
    path = split_gguf(QWEN_05B, tmp_path)
    assert path.stat().st_size == QWEN_05B.size
    assert path.read_bytes()[:4] == b"GGUF"

    def no_hashing(_: Path) -> str:
        raise AssertionError("an untouched, verified file is not hashed again")

    monkeypatch.setattr(local_models, "_sha256", no_hashing)
    assert split_gguf(QWEN_05B, tmp_path) == path
    assert resolve_text_model("qwen-0.5b", tmp_path) == path


@pytest.mark.model
def test_a_tampered_file_is_hashed_again_and_rebuilt(tmp_path: Path):
    path = split_gguf(QWEN_05B, tmp_path)
    with open(path, "r+b") as f:
        f.seek(QWEN_05B.size // 2)
        original = f.read(1)
        f.seek(QWEN_05B.size // 2)
        f.write(bytes([original[0] ^ 0xFF]))
    assert split_gguf(QWEN_05B, tmp_path) == path
    with open(path, "rb") as f:
        f.seek(QWEN_05B.size // 2)
        assert f.read(1) == original


def test_parts_that_do_not_match_the_pinned_hash_are_refused(tmp_path: Path):
    wrong = replace(QWEN_05B, sha256="0" * 64)
    with pytest.raises(ModelMissing, match="pinned"):
        split_gguf(wrong, tmp_path)
    # Nothing is left that a later start could load: no model, no staging file.
    assert list(tmp_path.iterdir()) == []


def test_a_missing_part_package_is_model_missing(tmp_path: Path):
    absent = replace(QWEN_05B, packages=(*QWEN_05B.packages[:5], "no_such_part_package"))
    with pytest.raises(ModelMissing, match="no_such_part_package"):
        split_gguf(absent, tmp_path)


def test_a_users_own_gguf_is_taken_by_path(tmp_path: Path):
    own = tmp_path / "mine.gguf"
    own.write_bytes(b"GGUF" + b"\0" * 16)
    assert resolve_text_model(str(own), tmp_path) == own
    assert resolve_text_model("smollm2", tmp_path).name.endswith(".gguf")
    not_gguf = tmp_path / "notes.txt"
    not_gguf.write_text("hello")
    with pytest.raises(ModelMissing, match="not a GGUF"):
        resolve_text_model(str(not_gguf), tmp_path)
