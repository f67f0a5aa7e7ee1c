"""`marketloop simulate` from the command line: summary, loaded events, refusal of an existing bank, --force."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.cli import simulate as simulate_cli
from marketloop.cli.main import app, main
from marketloop.core.bank import CUSTOMERS

runner = CliRunner()
ARGS = ["simulate", "--customers", "300", "--days", "7", "--seed", "3", "--end", "2025-06-30"]


def test_simulate_then_count_then_refuse_then_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path)]
    result = runner.invoke(app, [*ARGS, "--json", *data])
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    assert summary["rows"]["customers"] == 300
    assert summary["plan"] == {"customers": 300, "days": 7, "seed": 3, "end": "2025-06-30", "chunk_size": 100_000}
    assert summary["events"] == summary["loaded"] > 0

    counted = runner.invoke(app, ["events", "count", "--json", *data])
    assert orjson.loads(counted.stdout) == {"count": summary["events"]}

    with pytest.raises(SystemExit) as refused:
        main([*ARGS, *data])
    assert refused.value.code == 4
    assert "already has a bank" in capsys.readouterr().err

    forced = runner.invoke(app, [*ARGS, "--force", *data])
    assert forced.exit_code == 0, forced.output
    assert "customers" in forced.stdout
    assert "Ground truth" in forced.stdout
    again = runner.invoke(app, ["events", "count", "--json", *data])
    assert orjson.loads(again.stdout) == {"count": summary["events"]}


def test_demo_simulates_a_bank_once_and_leaves_loading_to_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(simulate_cli, "DEMO_CUSTOMERS", 200)
    container = Container.open(Settings(data_dir=tmp_path))
    try:
        simulate_cli.simulate_demo_bank(container)
        assert container.bank.count(CUSTOMERS) == 200
        assert container.log.end_offset(0) > 0
        assert container.warehouse.count_events() == 0  # the server's loader loads them
        simulate_cli.simulate_demo_bank(container)  # a bank is there: nothing to do
        assert container.bank.count(CUSTOMERS) == 200
    finally:
        container.close()
