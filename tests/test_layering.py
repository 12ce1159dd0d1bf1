"""The floors of docs/architecture.md are the import graph's, checked by import-linter.

`.importlinter` holds the contract: a room imports only from the floors below
it, and no two modules of one room import each other. A violation prints the
offending import chain and fails here, so the picture cannot drift from the code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def _lint(config: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.chdir(ROOT)  # contracts name `auditor`, found from the project root
    return lint_imports(config_filename=str(config), no_cache=True, no_logo=True)


def test_every_import_respects_the_floors_and_no_room_has_a_cycle(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _lint(ROOT / ".importlinter", monkeypatch)
    assert code == 0, capsys.readouterr().out


def test_the_contract_catches_an_import_from_a_lower_floor_to_a_higher_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check is live: turning the floors upside down must break the contract."""
    text = (ROOT / ".importlinter").read_text()
    head, _, rest = text.partition("layers =\n")
    layers, _, tail = rest.partition("\n\n")
    upside_down = "\n".join(reversed(layers.splitlines()))
    config = tmp_path / "upside-down.importlinter"
    config.write_text(f"{head}layers =\n{upside_down}\n\n{tail}")
    assert _lint(config, monkeypatch) != 0


def _layers(config_text: str) -> list[set[str]]:
    """The `layers =` block of the contract, top floor first, each floor a set of rooms."""
    block = config_text.partition("layers =\n")[2].partition("\n\n")[0]
    return [{room.strip() for room in line.split("|")} for line in block.splitlines()]


def _floors_in_architecture_doc() -> list[set[str]]:
    """The floors table of docs/architecture.md as module names (`sources/` -> auditor.sources)."""
    rows = []
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 3 and cells[1].isdigit():
            names = [n.strip(" `") for n in cells[2].split("∥")]
            rows.append({"auditor." + n.removesuffix("/").removesuffix(".py") for n in names})
    return rows


def test_the_floors_drawn_in_the_architecture_doc_are_the_contract_s() -> None:
    drawn = _floors_in_architecture_doc()
    assert drawn, "docs/architecture.md has no floors table"
    assert drawn == _layers((ROOT / ".importlinter").read_text())
