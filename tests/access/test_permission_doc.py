"""docs/permissions.md is what `marketloop docs permissions` generates from the code, to the byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketloop.cli.docs import current_matrix
from marketloop.testing.cli import run_cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"


def test_the_permission_matrix_doc_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == current_matrix(), (
        "docs/permissions.md is out of date: run `marketloop docs permissions`"
    )


def test_the_matrix_lists_every_route_with_its_roles() -> None:
    text = current_matrix()
    assert "| `/v1/customers/{identifier}/profile` | GET | `customers:read` |" in text
    assert "| `/v1/track` | POST | public | collection:" in text
    assert "**none (defect)**" not in text


def test_check_mode_fails_on_a_stale_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "permissions.md"
    stale.write_text("old\n", encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "docs", "permissions", "--output", str(stale), "--check")
    assert code == 1
    assert "out of date" in err
    assert run_cli(monkeypatch, capsys, "docs", "permissions", "--output", str(stale))[0] == 0
    assert run_cli(monkeypatch, capsys, "docs", "permissions", "--output", str(stale), "--check")[0] == 0
