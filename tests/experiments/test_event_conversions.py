"""Conversions from tracked events: a purchase event of a known customer (OneID with a cust_no) is a conversion."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import polars as pl
import pytest

from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.core.errors import MarketloopError
from marketloop.experiments.service import ExperimentSpec
from marketloop.testing.cli import run_cli

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path / "data"))
    yield opened
    opened.close()


def load_events(container: Container, rows: list[tuple[str, str, str, datetime, dict[str, object]]]) -> None:
    con = container.warehouse.cursor()
    for seq, (message_id, event, one_id, at, properties) in enumerate(rows):
        con.execute(
            "INSERT INTO events (message_id, type, event, timestamp, received_at, source, properties, load_seq, "
            "one_id) VALUES (?, 'track', ?, ?, ?, 'test', ?, ?, ?)",
            [message_id, event, at, at, orjson.dumps(properties).decode(), seq, one_id],
        )
    identities = [("cust_no", "C1", "o1"), ("cust_no", "C2", "o2"), ("phone", "x", "o3")]
    for id_type, value, one_id in identities:
        con.execute(
            "INSERT INTO identities VALUES (?, ?, ?, ?, 'test')",
            [id_type, value, one_id, T0 - timedelta(days=30)],
        )


def test_purchase_events_become_conversions_once(container: Container) -> None:
    service = container.experiments
    service.create(
        ExperimentSpec(
            experiment_id="exp_e", name="事件转化", control="holdout", variants={"holdout": 1, "push": 1}, goal="buy"
        )
    )
    service.assign(
        "exp_e",
        pl.DataFrame(
            {"cust_no": ["C1", "C2", "C3", "C4"], "variant": ["holdout", "push"] * 2, "assigned_at": [T0] * 4}
        ),
    )
    load_events(
        container,
        [
            ("m1", "purchase", "o1", T0 + timedelta(days=1), {"amount": 50_000, "fee": 120.5}),
            ("m2", "purchase", "o2", T0 + timedelta(days=2), {"amount": "not a number"}),
            ("m3", "purchase", "o3", T0 + timedelta(days=2), {"amount": 1}),  # no cust_no: not a customer yet
            ("m4", "page_view", "o2", T0 + timedelta(days=2), {}),
        ],
    )
    added = service.conversions_from_events(event="purchase", goal="buy", revenue_property="fee", aum_property="amount")
    assert added == 2
    assert service.conversions_from_events(event="purchase", goal="buy") == 0
    funnel = {row.variant: row for row in service.results("exp_e").funnel}
    assert funnel["holdout"].stages["converted"] == 1
    assert funnel["holdout"].revenue == pytest.approx(120.5)
    assert funnel["holdout"].aum == pytest.approx(50_000)
    assert funnel["push"].stages["converted"] == 1
    assert funnel["push"].aum == 0.0
    with pytest.raises(MarketloopError, match="Name the event"):
        service.conversions_from_events(event=" ", goal="buy")


def test_the_command_and_its_errors(monkeypatch, capsys, tmp_path: Path) -> None:
    data = str(tmp_path / "cli-data")
    args = ["experiment", "conversions-from-events", "--event", "purchase", "--goal", "buy", "--data-dir", data]
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert "0 new" in out
    code, _, err = run_cli(monkeypatch, capsys, *args, "--since", "yesterday")
    assert code == 2
    assert "not a time" in err
