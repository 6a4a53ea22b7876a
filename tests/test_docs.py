"""README's settings table is the settings class, documented field by field."""

from __future__ import annotations

import re
from pathlib import Path

from stepaudio.config import Settings
from stepaudio.config_doc import settings_table

README = Path(__file__).parents[1] / "README.md"


def test_every_setting_is_documented():
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} has no docstring"


def test_readme_settings_table_is_current():
    block = re.search(
        r"<!-- settings-table -->\n(.*)\n<!-- /settings-table -->", README.read_text(), re.S
    )
    assert block, "README lost its settings table markers"
    assert block.group(1) == settings_table(), (
        "README's settings table is stale: paste the output of `stepaudio settings`"
    )
