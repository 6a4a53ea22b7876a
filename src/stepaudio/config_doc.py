"""The settings as a Markdown table (README's), straight from the field docstrings."""

from __future__ import annotations

import json

from pydantic.fields import FieldInfo

from stepaudio.config import FLAT_NAMES, GROUPS, Settings


def _default(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, list | dict):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def _row(variable: str, field: FieldInfo, default: str | None = None) -> str:
    doc = " ".join((field.description or "").split()).replace("|", "\\|")
    return f"| {variable} | {default or _default(field.default)} | {doc} |"


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    flat_of = {(group, name): flat for flat, (group, name) in FLAT_NAMES.items()}
    for name, field in Settings.model_fields.items():
        if name in GROUPS:
            # One row per field of the group, under its nested name and its old flat one.
            for sub, subfield in GROUPS[name].model_fields.items():
                env = f"STEPAUDIO_{name.upper()}__{sub.upper()}"
                flat = flat_of.get((name, sub))
                also = f" (or `STEPAUDIO_{flat.upper()}`)" if flat else ""
                rows.append(_row(f"`{env}`{also}", subfield))
            continue
        env = f"STEPAUDIO_{name.upper()}"
        if name in ("vllm_api_url", "model_name"):
            env += f" (or {name.upper()})"
        default = "~/.local/share/stepaudio" if name == "data_dir" else None
        rows.append(_row(f"`{env}`", field, default))
    return "\n".join(rows)
