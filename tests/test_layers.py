"""The import layers of pyproject.toml's [tool.importlinter] contract, checked by
`lint-imports` itself: the tree as it is keeps them, and an upward import breaks them.

The linter runs in a subprocess because it finds the package to analyse through
``importlib.util.find_spec``, which answers from ``sys.modules`` once the package is
imported (as conftest does): only a fresh interpreter can be pointed at a doctored copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(src: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the project's contracts on the ``stepaudio`` found in ``src``."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        env={**os.environ, "PYTHONPATH": str(src)},
        cwd=src,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layers_hold() -> None:
    result = lint(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout


@pytest.mark.parametrize(
    "module, line",
    [
        # An engine reaching up into the pipeline (what engines/ did with pipeline.params).
        ("engines/base.py", "import stepaudio.pipeline.merge"),
        # The bottom layer importing settings.
        ("params.py", "import stepaudio.config"),
        # Only api/app.py, the composition root, may import the UI.
        ("api/openai_audio.py", "import stepaudio.ui"),
    ],
)
def test_an_upward_import_breaks_the_contract(tmp_path: Path, module: str, line: str) -> None:
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "src" / "stepaudio", src / "stepaudio", ignore=shutil.ignore_patterns("__pycache__")
    )
    target = src / "stepaudio" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # upward on purpose\n")
    result = lint(src)
    assert result.returncode == 1, result.stdout + result.stderr
    importer = "stepaudio." + module.removesuffix(".py").replace("/", ".")
    assert "BROKEN" in result.stdout and importer in result.stdout, result.stdout
