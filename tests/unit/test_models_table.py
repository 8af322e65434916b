"""The model table is data an operator can override without touching code."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core import models_file
from bot.core.models_table import ModelSpec, ModelTable, ModelTableError


def get(table: ModelTable, name: str) -> ModelSpec:
    spec = table.resolve(name)
    assert spec is not None, name
    return spec


def test_todays_models_and_aliases() -> None:
    table = ModelTable.builtin()
    assert table.default.id == "nano-banana-2-lite"
    assert get(table, "imagen-4").id == "nano-banana-2-lite"
    assert get(table, "nano-banana").id == "nano-banana-2"
    assert get(table, "pro").can_upscale
    assert not get(table, "lite").can_upscale
    assert get(table, "lite").accepts_ratio("16:9", with_references=False)
    assert not get(table, "lite").accepts_ratio("auto", with_references=True)
    assert get(table, "2").accepts_ratio("auto", with_references=True)
    assert not get(table, "2").accepts_ratio("auto", with_references=False)


def test_override_file_changes_and_extends(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(
        'default = "nano-banana-3"\n'
        "[models.nano-banana-pro]\nmax_references = 8\n"
        '[models.nano-banana-3]\nlabel = "Nano Banana 3"\naliases = ["3"]\n'
        'upscale = ["2k"]\nauto_aspect = true\n'
    )
    table = models_file.load(path)
    assert table.default.id == "nano-banana-3"
    assert get(table, "3").upscale == ("2k",)
    assert get(table, "pro").max_references == 8
    assert get(table, "pro").label == "Nano Banana Pro"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('default = "nope"', "default model 'nope' is not in the table"),
        ("[models.x]\nmax_references = 11", "max_references must be 0–10"),
        ("[models.x]\ncolour = 1", "unknown field 'colour'"),
        ('[models.x]\naliases = ["pro"]', "used by both"),
        ("[models.x", "cannot read"),
    ],
)
def test_bad_override_files_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "models.toml"
    path.write_text(text)
    with pytest.raises(ModelTableError, match=message):
        models_file.load(path)
