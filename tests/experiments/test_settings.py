"""[experiments] channel costs: a settings file overrides some channels, the others keep their defaults."""

from __future__ import annotations

from pathlib import Path

from marketloop.app.settings import DEFAULT_CHANNEL_COSTS, load_settings


def test_channel_costs_override_only_what_the_file_names(tmp_path: Path) -> None:
    config = tmp_path / "marketloop.toml"
    config.write_text("[experiments.channel_costs]\nsms = 0.05\nvideo_call = 4\n", encoding="utf-8")
    costs = load_settings(config).experiments.channel_costs
    assert costs["sms"] == 0.05
    assert costs["video_call"] == 4.0
    assert costs["rm"] == DEFAULT_CHANNEL_COSTS["rm"]
    assert load_settings(None).experiments.channel_costs == DEFAULT_CHANNEL_COSTS
