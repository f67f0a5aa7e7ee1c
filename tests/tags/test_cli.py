"""`marketloop tags` end to end on a small simulated bank: list, show, refresh, create, import, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marketloop.testing.cli import run_cli


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    folder = str(tmp_path / "data")
    monkeypatch.setenv("MARKETLOOP_SECURITY__KEY_FILE", str(tmp_path / "keys.json"))
    code, _, err = run_cli(monkeypatch, capsys, "simulate", "--customers", "300", "--days", "20", "--seed", "3",
                           "--end", "2026-11-20", "--json", "--data-dir", folder)  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(monkeypatch, capsys, "customers", "refresh", "--as-of", "2026-11-21", "--json",
                           "--data-dir", folder)  # fmt: skip
    assert code == 0, err
    return folder


def test_list_show_refresh_create_and_import(
    data_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def cli(*args: str) -> tuple[int, str, str]:
        return run_cli(monkeypatch, capsys, "tags", *args, "--data-dir", data_dir)

    code, out, _ = cli("list", "--json")
    assert code == 0
    assert len(json.loads(out)) >= 100
    code, out, _ = cli("refresh", "--json", "--as-of", "2026-11-21")
    assert code == 0
    assert len(json.loads(out)["refreshed"]) >= 100
    code, out, _ = cli("refresh", "--json", "--as-of", "2026-11-21")
    assert json.loads(out)["refreshed"] == []
    code, out, _ = cli("show", "aum_band", "--json")
    shown = json.loads(out)
    assert shown["lineage"]["relations"] == ["customer_profile", "customers"]
    assert shown["coverage"][0]["customers"] == 300
    assert cli("show", "no_such_tag")[0] == 3

    bad = tmp_path / "bad.toml"
    bad.write_text('when = "aum >= 1 and\\n  agee > 3"\n', encoding="utf-8")
    code, _, err = cli("create", "bad_tag", "--title", "x", "--category", "value", "--kind", "rule",
                       "--definition", str(bad))  # fmt: skip
    assert code == 2
    assert "/definition/when 2:3: unknown field 'agee'" in err

    good = tmp_path / "rich.toml"
    good.write_text('cases = [{ when = "aum >= 500000", value = "rich" }]\nelse = "other"\n', encoding="utf-8")
    code, out, _ = cli("create", "rich_or_not", "--title", "富", "--category", "assets", "--kind", "rule",
                       "--definition", str(good), "--json")  # fmt: skip
    assert code == 0
    assert json.loads(out)["values"] == ["rich", "other"]

    assert cli("create", "call_list", "--title", "外呼名单", "--category", "value")[0] == 0
    listed = tmp_path / "list.csv"
    listed.write_text("cust_no,value\nC0000000001,true\nC0000000002,true\nNOBODY,true\n,true\n", encoding="utf-8")
    code, out, _ = cli("import", "call_list", str(listed), "--json")
    assert code == 1  # imported the good rows, reported the rest
    result = json.loads(out)
    assert (result["customers"], result["rejected_customers"], result["bad_lines"]) == (2, ["NOBODY"], [4])
