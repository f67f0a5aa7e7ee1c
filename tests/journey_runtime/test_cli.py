"""`marketloop journeys …` on a data directory: drafts, publish, pause / resume, counts, dry run, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marketloop.app.journeys import open_journeys
from marketloop.app.settings import Settings
from marketloop.testing.access import approved, grant
from marketloop.testing.cli import run_cli

from .conftest import wealth_journey


def test_journeys_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    graph = tmp_path / "journey.json"
    graph.write_text(json.dumps(wealth_journey()), encoding="utf-8")
    code, out, _ = run_cli(monkeypatch, capsys, "journeys", "create", "-f", str(graph), "--data-dir", data)
    assert code == 0, out
    assert "draft" in out
    _, access, engine = open_journeys(Settings(data_dir=Path(data)))
    maker = grant(access, "marketer", username="maker")
    approval = approved(access, maker, "journey.publish", "journey:wealth_browse")
    engine.dispose()
    publish = ("journeys", "publish", "wealth_browse", "--as", "maker", "--data-dir", data)
    code, _, err = run_cli(monkeypatch, capsys, *publish, "--approval", "apr_nope")
    assert code == 5, err
    code, out, _ = run_cli(monkeypatch, capsys, *publish, "--approval", approval)
    assert code == 0
    assert "v1" in out
    assert run_cli(monkeypatch, capsys, *publish, "--approval", approval)[0] == 5  # an approval is spent once
    assert run_cli(monkeypatch, capsys, "journeys", "pause", "wealth_browse", "--data-dir", data)[0] == 0
    code, _, err = run_cli(monkeypatch, capsys, "journeys", "pause", "wealth_browse", "--data-dir", data)
    assert code != 0
    assert "paused" in err
    assert run_cli(monkeypatch, capsys, "journeys", "resume", "wealth_browse", "--data-dir", data)[0] == 0
    code, out, _ = run_cli(monkeypatch, capsys, "journeys", "counts", "wealth_browse", "--json", "--data-dir", data)
    assert json.loads(out)["push"]["sent"] == 0
    customers = tmp_path / "customers.json"
    customers.write_text(json.dumps([{"customer": "T1", "context": {"properties": {"product": "稳盈"}}}]))
    code, out, _ = run_cli(
        monkeypatch, capsys, "journeys", "dry-run", "wealth_browse", "-c", str(customers), "--data-dir", data
    )
    assert code == 0
    assert json.loads(out)[0]["ended"] == "exited"
    code, out, _ = run_cli(monkeypatch, capsys, "journeys", "list", "--json", "--data-dir", data)
    assert [j["journey_id"] for j in json.loads(out)] == ["wealth_browse"]


def test_bad_input_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    broken = wealth_journey()
    broken["steps"][1]["next"] = {"sent": "nowhere"}
    graph = tmp_path / "journey.json"
    graph.write_text(json.dumps(broken), encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "journeys", "create", "-f", str(graph), "--data-dir", data)
    assert code == 2
    assert "/steps/1/next/sent" in err
    code, _, err = run_cli(
        monkeypatch, capsys, "journeys", "publish", "nope", "--approval", "a", "--as", "x", "--data-dir", data
    )
    assert code != 0
    assert "No such user: x" in err
    code, _, err = run_cli(monkeypatch, capsys, "journeys", "create", "-f", str(tmp_path / "missing.json"))
    assert code == 2
