"""The analysis service on a real data directory: cache by data version, drill-down to masked customers, API, CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from marketloop.analytics.parse import SpecError
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.core.errors import MarketloopError
from marketloop.core.scope import Scope
from marketloop.testing.access import grant
from marketloop.testing.analytics import event_row
from marketloop.testing.cli import run_cli

FUNNEL = {
    "model": "funnel",
    "range": {"from": "2026-11-02", "to": "2026-11-09"},
    "steps": ["view_wealth", "use_yield_calculator", "buy_wealth"],
    "window": "1d",
}


@pytest.fixture
def container(data_dir: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=data_dir))
    yield opened
    opened.close()


def test_results_are_cached_until_the_data_changes(container: Container) -> None:
    first = container.analytics.query(FUNNEL)
    again = container.analytics.query(FUNNEL)
    assert (first.cached, again.cached) == (False, True)
    assert again.result == first.result
    assert again.definition_hash == first.definition_hash
    other = container.analytics.query(FUNNEL | {"window": "2d"})
    assert other.cached is False
    assert other.definition_hash != first.definition_hash
    moment = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    container.warehouse.cursor().execute(
        "INSERT INTO events (message_id, type, event, user_id, timestamp, received_at, source, properties, load_seq)"
        " VALUES ('X1', 'track', 'view_wealth', 'C5', ?, ?, 'test', '{}', 1000)",
        [moment, moment],
    )
    try:
        fresh = container.analytics.query(FUNNEL)
        assert fresh.cached is False
        assert fresh.data_version != first.data_version
        assert fresh.result["groups"][0]["steps"][0]["customers"] == 5
    finally:
        container.warehouse.cursor().execute("DELETE FROM events WHERE message_id = 'X1'")
    assert container.analytics.query(FUNNEL).result == first.result
    assert event_row(1, "C1", moment, "x", {})["load_seq"] == 1


def test_drill_down_lists_the_customers_of_a_cell_masked_then_their_timeline(container: Container) -> None:
    result = container.analytics.query(FUNNEL).result
    converted = result["groups"][0]["steps"][2]
    page = container.analytics.customers(FUNNEL, converted["cell"])
    assert page.total == converted["customers"] == 2
    assert [(hit.cust_no, hit.name) for hit in page.items] == [("C1", "张*"), ("C4", "赵*")]
    dropped = container.analytics.customers(FUNNEL, result["groups"][0]["steps"][1]["cell"], dropped=True)
    assert [hit.cust_no for hit in dropped.items] == ["C2", "C3"]
    second = container.analytics.customers(FUNNEL, converted["cell"], limit=1, offset=1)
    assert (second.total, [hit.cust_no for hit in second.items]) == (2, ["C4"])
    timeline = container.analytics.timeline("C4", limit=2)
    assert [item.name for item in timeline.items] == ["buy_wealth", "use_yield_calculator"]


@pytest.mark.parametrize(
    ("doc", "cell", "cust_nos"),
    [
        ({"model": "events", "event": "buy_wealth"}, {"bucket": "2026-11-02", "grp": "all"}, ["C1", "C2"]),
        (
            {"model": "retention", "start": "view_wealth", "back": "login", "periods": 3},
            {"cohort": "2026-11-02", "period": 1},
            ["C1"],
        ),
        (
            {"model": "paths", "anchor": "view_wealth", "depth": 2},
            {"step": 1, "name": "use_yield_calculator"},
            ["C1", "C4"],
        ),
        (
            {"model": "attribution", "conversion": "buy_wealth", "channel": "campaign", "lookback": "7d"},
            {"kind": "touch", "channel": "C"},
            ["C4"],
        ),
        (
            {"model": "attribution", "conversion": "buy_wealth", "channel": "campaign", "lookback": "7d"},
            {"kind": "unattributed", "channel": None},
            ["C3"],
        ),
        (  # the Sankey link calc → buy after the first view
            {"model": "paths", "anchor": "view_wealth", "depth": 2},
            {"step": 1, "name": "use_yield_calculator", "next": "buy_wealth"},
            ["C1", "C4"],
        ),
        (
            {"model": "paths", "anchor": "view_wealth", "depth": 2},
            {"step": 0, "name": "view_wealth", "next": "login"},
            ["C3"],
        ),
        ({"model": "frequency", "event": "login"}, {"k": 2}, ["C1"]),
        (
            {"model": "distribution", "event": "buy_wealth", "property": "amount", "bins": [2000, 4000]},
            {"bin": 1},
            ["C2", "C4"],
        ),
    ],
)
def test_every_model_drills_down(container: Container, doc: dict, cell: dict, cust_nos: list[str]) -> None:
    spec = {"range": {"from": "2026-11-02", "to": "2026-11-09"}} | doc
    assert [hit.cust_no for hit in container.analytics.customers(spec, cell).items] == cust_nos


def test_numbers_and_customer_lists_keep_to_the_callers_data_scope(container: Container) -> None:
    shanghai = Scope(branch_ids=frozenset({"B01"}))  # C1, C2
    result = container.analytics.query(FUNNEL, scope=shanghai).result
    assert [s["customers"] for s in result["groups"][0]["steps"]] == [2, 2, 1]
    page = container.analytics.customers(FUNNEL, {"grp": "all", "step": 1}, scope=shanghai)
    assert [hit.cust_no for hit in page.items] == ["C1", "C2"]
    nobody = container.analytics.query(FUNNEL, scope=Scope(rm_id="RM-none")).result
    assert nobody["groups"] == []  # nobody in scope: no group has entered the funnel
    with pytest.raises(MarketloopError) as outside:
        container.analytics.timeline("C4", scope=shanghai)
    assert outside.value.kind == "not-found"


def test_a_cell_with_the_wrong_coordinates_is_a_spec_error(container: Container) -> None:
    with pytest.raises(SpecError) as caught:
        container.analytics.customers(FUNNEL, {"step": 2})
    assert caught.value.errors[0].pointer == "/cell"
    paths = FUNNEL | {"model": "paths", "anchor": "view_wealth"}
    del paths["steps"], paths["window"]
    with pytest.raises(SpecError) as not_a_funnel:
        container.analytics.customers(paths, {"step": 1, "name": "login"}, dropped=True)
    assert not_a_funnel.value.errors[0].pointer == "/dropped"
    with pytest.raises(SpecError) as wrong_type:
        container.analytics.customers(FUNNEL, {"step": "two", "grp": "all"})
    assert wrong_type.value.errors[0].pointer == "/cell/step"


def test_query_api_answers_results_and_problems(container: Container) -> None:
    from marketloop.api.app import create_app

    client = TestClient(create_app(container), base_url="https://testserver")
    headers = grant(container.access, "analyst")
    assert client.post("/v1/analytics/query", json=FUNNEL).status_code == 401
    answer = client.post("/v1/analytics/query", json=FUNNEL, headers=headers)
    assert answer.status_code == 200
    body = answer.json()
    assert [s["customers"] for s in body["result"]["groups"][0]["steps"]] == [4, 4, 2]
    assert body["definition_hash"]
    assert body["data_version"].startswith("events:")
    bad = client.post("/v1/analytics/query", json=FUNNEL | {"steps": ["view_wealth"]}, headers=headers)
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["type"].endswith("/analytics.invalid-spec")
    assert bad.json()["errors"][0]["pointer"] == "/steps"
    drill = client.post(
        "/v1/analytics/customers",
        json={"spec": FUNNEL, "cell": {"grp": "all", "step": 3}},
        headers=headers,
    )
    assert drill.status_code == 200
    assert [i["cust_no"] for i in drill.json()["items"]] == ["C1", "C4"]
    bad_drill = client.post(
        "/v1/analytics/customers", json={"spec": FUNNEL | {"window": "0d"}, "cell": {}}, headers=headers
    )
    assert bad_drill.json()["errors"][0]["pointer"] == "/spec/window"
    timeline = client.get("/v1/analytics/customers/C1/timeline?limit=1", headers=headers)
    assert timeline.status_code == 200
    assert timeline.json()["items"][0]["name"] == "login"
    sql = client.post("/v1/analytics/sql", json=FUNNEL, headers=headers)
    assert sql.status_code == 200
    assert "WITH scanned AS" in sql.json()["sql"]


def test_cli_query_sql_customers_and_bad_spec(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "funnel.json"
    spec.write_text(json.dumps(FUNNEL), encoding="utf-8")
    code, out, _ = run_cli(monkeypatch, capsys, "analytics", "query", str(spec), "--json", "--data-dir", str(data_dir))
    assert code == 0
    assert [s["customers"] for s in json.loads(out)["result"]["groups"][0]["steps"]] == [4, 4, 2]
    code, out, _ = run_cli(monkeypatch, capsys, "analytics", "query", str(spec), "--data-dir", str(data_dir))
    assert code == 0
    assert "funnel" in out
    assert "data version" in out
    code, out, _ = run_cli(monkeypatch, capsys, "analytics", "sql", str(spec), "--data-dir", str(data_dir))
    assert code == 0
    assert "WITH scanned AS" in out
    code, out, _ = run_cli(
        monkeypatch,
        capsys,
        "analytics",
        "customers",
        str(spec),
        "--cell",
        '{"grp": "all", "step": 3}',
        "--json",
        "--data-dir",
        str(data_dir),
    )
    assert code == 0
    assert [i["cust_no"] for i in json.loads(out)["items"]] == ["C1", "C4"]
    spec.write_text(json.dumps(FUNNEL | {"window": "0d", "order": "sideways"}), encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "analytics", "query", str(spec), "--data-dir", str(data_dir))
    assert code == 2
    assert "/window" in err
    spec.write_text("{", encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "analytics", "query", str(spec), "--data-dir", str(data_dir))
    assert code == 2
    assert "not JSON" in err
