"""Settings precedence (flag > environment > marketloop.toml) and CLI behaviour on bad input."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from marketloop.app.settings import load_settings
from marketloop.cli.main import app, main

runner = CliRunner()


def test_toml_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "marketloop.toml"
    config.write_text('data_dir = "/from/toml"\n[server]\nport = 9001\n[loader]\nmin_batch = 5\n')
    settings = load_settings(config)
    assert settings.data_dir == Path("/from/toml")
    assert settings.server.port == 9001
    assert settings.loader.min_batch == 5

    monkeypatch.setenv("MARKETLOOP_SERVER__PORT", "9002")
    monkeypatch.setenv("MARKETLOOP_DATA_DIR", "/from/env")
    settings = load_settings(config)
    assert settings.server.port == 9002
    assert settings.data_dir == Path("/from/env")
    assert settings.loader.min_batch == 5

    assert load_settings(config, data_dir=tmp_path).data_dir == tmp_path


def test_unknown_setting_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "marketloop.toml"
    config.write_text("[loader]\nmin_bach = 5\n")
    with pytest.raises(ValueError, match="min_bach"):
        load_settings(config)


def test_sources_create_list_disable(tmp_path: Path) -> None:
    created = runner.invoke(app, ["sources", "create", "mobile-app", "--json", "--data-dir", str(tmp_path)])
    assert created.exit_code == 0, created.output
    source = orjson.loads(created.stdout)
    assert source["name"] == "mobile-app"
    assert source["write_key"].startswith("mlwk_")

    listed = runner.invoke(app, ["sources", "list", "--json", "--data-dir", str(tmp_path)])
    assert [s["name"] for s in orjson.loads(listed.stdout)] == ["mobile-app"]
    assert "write_key" not in listed.stdout  # the key is shown once, at creation

    disabled = runner.invoke(app, ["sources", "disable", "mobile-app", "--data-dir", str(tmp_path)])
    assert disabled.exit_code == 0
    listed = runner.invoke(app, ["sources", "list", "--json", "--data-dir", str(tmp_path)])
    assert orjson.loads(listed.stdout)[0]["enabled"] is False


def test_events_count_on_an_empty_data_dir(tmp_path: Path) -> None:
    result = runner.invoke(app, ["events", "count", "--json", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout) == {"count": 0}


def test_bad_settings_file_is_a_readable_cli_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nport = 'eighty'\n")
    result = runner.invoke(app, ["events", "count", "--config", str(config), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "server.port" in result.stderr


def test_disabling_an_unknown_source_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["sources", "disable", "nope", "--data-dir", str(tmp_path)])
    assert exited.value.code == 3
    assert "No such source: nope" in capsys.readouterr().err
