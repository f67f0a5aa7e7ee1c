"""M5's bad-input list end to end: the same clear problem over HTTP (problem+json) and in the CLI (exit 2).

A funnel with one step, an empty window (an empty range, a zero conversion
window), a metric that is not numeric (an analysis summing a text property,
an A/B file's text column), a variant with zero customers.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.testing.access import grant
from marketloop.testing.cli import run_cli

WEEK = {"from": "2026-11-02", "to": "2026-11-09"}
FUNNEL = {"model": "funnel", "range": WEEK, "steps": ["view_wealth", "buy_wealth"], "window": "1d"}
TEXT_AVERAGE = {"model": "events", "range": WEEK, "event": "touch_delivered", "measure": "avg", "property": "campaign"}
BAD_SPECS = [
    (FUNNEL | {"steps": ["view_wealth"]}, "/steps", "2 to 20 steps, not 1"),
    (FUNNEL | {"range": {"from": "2026-11-09", "to": "2026-11-09"}}, "/range", "the range is empty"),
    (FUNNEL | {"range": {"last": "0d"}}, "/range/last", "positive duration"),
    (FUNNEL | {"window": "0d"}, "/window", "positive duration"),
    (TEXT_AVERAGE, "/property", "property 'campaign' is not numeric: 5 matching events hold it"),
]


@pytest.fixture(scope="module")
def container(data_dir: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=data_dir))
    yield opened
    opened.close()


@pytest.mark.parametrize(("spec", "pointer", "words"), BAD_SPECS)
def test_the_api_answers_a_problem_pointing_at_the_spot(
    container: Container, spec: dict[str, Any], pointer: str, words: str
) -> None:
    client = TestClient(create_app(container), base_url="https://testserver")
    answer = client.post("/v1/analytics/query", json=spec, headers=grant(container.access, "analyst"))
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"].endswith("/analytics.invalid-spec")
    assert problem["errors"][0]["pointer"] == pointer
    assert words in problem["errors"][0]["detail"]


@pytest.mark.parametrize(("spec", "pointer", "words"), BAD_SPECS)
def test_the_cli_prints_the_spot_and_exits_2(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    spec: dict[str, Any],
    pointer: str,
    words: str,
) -> None:
    folder = tmp_path / "data"  # a copy: the module's container holds the shop's own data directory
    shutil.copytree(data_dir, folder)
    file = tmp_path / "spec.json"
    file.write_text(json.dumps(spec), encoding="utf-8")
    code, out, err = run_cli(monkeypatch, capsys, "analytics", "query", str(file), "--data-dir", str(folder))
    assert code == 2
    assert out == ""
    shown = " ".join(err.split())
    assert f"{file}: {pointer}: " in shown
    assert words in shown


def test_a_sum_of_a_numeric_property_is_still_computed(container: Container) -> None:
    amounts = {"model": "events", "range": WEEK, "event": "buy_wealth", "measure": "sum", "property": "amount"}
    series = container.analytics.query(amounts).result["series"]
    assert sum(entry["value"] for entry in series) == 5000 + 2000 + 1000 + 3000
    absent = amounts | {"property": "no_such_property"}  # held by no event: nothing to sum, not an error
    assert all(entry["value"] is None for entry in container.analytics.query(absent).result["series"])


def test_an_alert_on_a_text_property_points_under_metric(container: Container) -> None:
    from marketloop.analytics.parse import SpecError

    metric = {k: v for k, v in TEXT_AVERAGE.items() if k != "range"}
    rule = {"name": "x", "metric": metric, "kind": "threshold", "above": 1, "webhook": "https://hooks.example/a"}
    with pytest.raises(SpecError) as caught:
        container.alerts.check(container.alerts.read(rule))
    assert caught.value.errors[0].pointer == "/metric/property"


@pytest.mark.parametrize(
    ("rows", "args", "words"),
    [
        (  # a metric column that is not numeric
            {"v": ["a", "b", "a", "b"], "y": ["x", "y", "x", "y"]},
            ["--metric", "y"],
            "column 'y' holds String",
        ),
        (  # a planned variant with zero customers in the data
            {"v": ["a", "b"] * 20, "y": [0, 1] * 20},
            ["--metric", "y", "--planned-split", "a=1,b=1,c=1"],
            "The planned split names a variant that has no customers",
        ),
        (  # the control variant with zero customers
            {"v": ["b", "c"] * 20, "y": [0, 1] * 20},
            ["--metric", "y"],
            "no row has v = 'a'",
        ),
    ],
)
def test_the_ab_command_refuses_bad_metrics_and_empty_variants(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    rows: dict[str, list[Any]],
    args: list[str],
    words: str,
) -> None:
    path = tmp_path / "ab.csv"
    pl.DataFrame(rows).write_csv(path)
    code, out, err = run_cli(
        monkeypatch, capsys, "experiment", "analyze", "--data", str(path), "--variant-col", "v", "--control", "a", *args
    )
    assert code == 2
    assert out == ""
    assert words in " ".join(err.split())
