"""The settings as a Markdown table (README's), straight from the field docstrings."""

from __future__ import annotations

import json

from stepaudio.config import Settings


def _default(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, list | dict):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        env = f"STEPAUDIO_{name.upper()}"
        if name in ("vllm_api_url", "model_name"):
            env += f" (or {name.upper()})"
        default = "~/.local/share/stepaudio" if name == "data_dir" else _default(field.default)
        doc = " ".join((field.description or "").split()).replace("|", "\\|")
        rows.append(f"| `{env}` | {default} | {doc} |")
    return "\n".join(rows)
