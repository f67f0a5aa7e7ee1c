"""Segment monitoring through the real wiring: the API (permissions, problem+json) and the CLI (JSON, exit codes)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.testing.access import grant
from marketloop.testing.cli import run_cli
from marketloop.testing.segments import AS_OF, PROFILE_COLUMNS, SmallBank, ddl, inserts, tables

DAY1, DAY2 = AS_OF, AS_OF + timedelta(days=7)
STAGES = {"segments": [{"name": "high", "definition": "aum >= 100000"}, {"name": "mid", "definition": "aum >= 10000"}]}


def small_bank() -> SmallBank:
    bank = SmallBank()
    for i, (aum, payroll) in enumerate([(200_000, True), (50_000, True), (5_000, True), (900_000, False)], start=1):
        bank.customers.append(
            {"cust_no": f"C{i}", "status": "active", "branch_id": "B01", "open_date": date(2020, 1, 1)}
        )
        bank.profiles.append({"cust_no": f"C{i}", "aum": aum, "payroll_customer": payroll, "vip_tier": "gold"})
    return bank


def planted_bank(customers: int = 400) -> SmallBank:
    """Payroll customers are mostly a group with high AUM and many logins; the rest are not."""
    rng = random.Random(5)
    bank = SmallBank()
    for i in range(customers):
        group = rng.random() < 0.3
        opened = date(2021, 1, 1)
        bank.customers.append({"cust_no": f"P{i:04d}", "status": "active", "branch_id": "B01", "open_date": opened})
        bank.profiles.append(
            {
                "cust_no": f"P{i:04d}",
                "age": rng.randint(30, 36) if group else rng.randint(20, 70),
                "aum": rng.randint(300_000, 900_000) if group else rng.randint(0, 200_000),
                "payroll_customer": rng.random() < (0.6 if group else 0.03),
            }
        )
    return bank


def load(container: Container, bank: SmallBank) -> None:
    """The bank's rows into the container's tables, and a `customer_profile` built from its profiles."""
    con = container.warehouse.cursor()
    for name, columns, rows in tables(bank):
        if name == "customer_profile":
            columns = {"cust_no": PROFILE_COLUMNS["vip_tier"]} | PROFILE_COLUMNS
            con.execute(ddl("duckdb", name, columns))
        insert = inserts("duckdb", name, columns, rows)
        if insert:
            con.execute(insert)


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path / "data"))
    try:
        yield opened
    finally:
        opened.close()


def test_api_freezes_monitors_and_reads_transitions(container: Container) -> None:
    load(container, small_bank())
    client = TestClient(create_app(container), headers=grant(container.access, "admin"))
    saved = client.post("/v1/segments", json={"name": "代发", "definition": "payroll_customer = true"}).json()
    segment_id = saved["segment_id"]
    frozen = client.post(
        f"/v1/segments/{segment_id}/freeze",
        json={"name": "代发-11月", "as_of": DAY1.isoformat(), "share_threshold": 20},
    )
    assert frozen.status_code == 201
    assert frozen.json()["members"] == 3
    first = client.post("/v1/segments/fixed/代发-11月/monitor", json={"stages": STAGES, "as_of": DAY1.isoformat()})
    assert first.status_code == 200
    assert first.json()["snapshot"]["counts"] == {"high": 1, "mid": 1, "_none": 1, "_left": 0}
    container.warehouse.cursor().execute("UPDATE customer_profile SET aum = 500000 WHERE cust_no = 'C2'")
    second = client.post("/v1/segments/fixed/代发-11月/monitor", json={"as_of": DAY2.isoformat()}).json()
    assert [(a["kind"], a["stage"]) for a in second["alerts"]] == [("stage-share", "high"), ("stage-share", "mid")]
    matrix = client.get(
        "/v1/segments/fixed/代发-11月/transitions",
        params={"from": DAY1.date().isoformat(), "to": DAY2.date().isoformat()},
    ).json()
    assert {(c["from_stage"], c["to_stage"], c["customers"]) for c in matrix["cells"]} == {
        ("high", "high", 1),
        ("mid", "high", 1),
        ("_none", "_none", 1),
    }
    report = client.get("/v1/segments/fixed/代发-11月").json()
    assert [s["on"] for s in report["snapshots"]] == [DAY1.date().isoformat(), DAY2.date().isoformat()]
    assert [f["name"] for f in client.get(f"/v1/segments/{segment_id}/fixed").json()] == ["代发-11月"]

    missing = client.get("/v1/segments/fixed/nope")
    assert (missing.status_code, missing.headers["content-type"]) == (404, "application/problem+json")
    no_date = client.get("/v1/segments/fixed/代发-11月/transitions", params={"from": "2026-01-01", "to": "2026-01-02"})
    assert no_date.status_code == 404
    assert no_date.json()["type"].endswith("segments.no-stage-snapshot")
    bad = client.post("/v1/segments/fixed/代发-11月/monitor", json={"stages": {"column": "vip_tier"}})
    assert (bad.status_code, bad.json()["type"].split("/")[-1]) == (409, "segments.stages-fixed")
    assert client.post(f"/v1/segments/{segment_id}/freeze", json={"name": "a/b"}).status_code == 422


def test_api_sizes_rules_lookalike_errors_and_permissions(container: Container) -> None:
    load(container, small_bank())
    client = TestClient(create_app(container), headers=grant(container.access, "admin"))
    segment_id = client.post("/v1/segments", json={"name": "代发", "definition": "payroll_customer = true"}).json()[
        "segment_id"
    ]
    client.post(f"/v1/segments/{segment_id}/materialise", json={"as_of": DAY1.isoformat()})
    rule = client.put(f"/v1/segments/{segment_id}/size-rule", json={"drop_pct": 20})
    assert rule.json() == {"segment_id": segment_id, "drop_pct": 20.0, "spike_pct": None, "baseline": 1}
    history = client.get(f"/v1/segments/{segment_id}/sizes").json()
    assert [p["customers"] for p in history["points"]] == [3]
    bad_rule = client.put(f"/v1/segments/{segment_id}/size-rule", json={"drop_pct": -5})
    assert (bad_rule.status_code, bad_rule.json()["errors"][0]["pointer"]) == (400, "/drop_pct")
    too_small = client.post(f"/v1/segments/{segment_id}/lookalike", json={"size": 5})
    assert (too_small.status_code, too_small.json()["type"].split("/")[-1]) == (400, "segments.lookalike-too-small")
    assert client.get(f"/v1/segments/{segment_id}/lookalike").status_code == 404

    analyst = TestClient(create_app(container), headers=grant(container.access, "analyst"))
    assert analyst.get(f"/v1/segments/{segment_id}/sizes").status_code == 200
    assert analyst.post(f"/v1/segments/{segment_id}/freeze", json={"name": "x"}).status_code == 403
    assert analyst.post(f"/v1/segments/{segment_id}/lookalike", json={"size": 5}).status_code == 403
    assert TestClient(create_app(container)).get(f"/v1/segments/{segment_id}/sizes").status_code == 401


def prepared(folder: Path, bank: SmallBank) -> str:
    """A data directory with `bank` loaded and a payroll segment saved; its id."""
    container = Container.open(Settings(data_dir=folder))
    try:
        load(container, bank)
        return container.segments.save("代发", "payroll_customer = true").segment_id
    finally:
        container.close()


def test_cli_freeze_monitor_transitions_and_lookalike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    segment_id = prepared(tmp_path / "data", small_bank())
    data = ("--data-dir", str(tmp_path / "data"))

    def cli(*args: str) -> tuple[int, str, str]:
        return run_cli(monkeypatch, capsys, "segments", *args, *data)

    code, out, _ = cli("freeze", "代发-11月", "--segment", segment_id, "--as-of", DAY1.isoformat(), "--json")
    assert (code, json.loads(out)["members"]) == (0, 3)
    code, _, err = cli("monitor", "代发-11月", "--as-of", DAY1.isoformat())
    assert code == 2
    assert "has no stages yet" in err
    stages = tmp_path / "stages.txt"
    stages.write_text("# 资产分层\nhigh: aum >= 100000\nmid: aum >= 10000\n", encoding="utf-8")
    code, out, _ = cli("monitor", "代发-11月", "--stages", str(stages), "--as-of", DAY1.isoformat(), "--json")
    assert (code, json.loads(out)["snapshot"]["counts"]) == (0, {"high": 1, "mid": 1, "_none": 1, "_left": 0})
    code, out, _ = cli("monitor", "代发-11月", "--as-of", DAY2.isoformat())
    assert code == 0
    assert "high" in out
    day1, day2 = DAY1.date().isoformat(), DAY2.date().isoformat()
    code, out, _ = cli("transitions", "代发-11月", "--from", day1, "--to", day2, "--json")
    assert code == 0
    assert json.loads(out)["from_totals"] == {"high": 1, "mid": 1, "_none": 1, "_left": 0}
    code, out, _ = cli("transitions", "代发-11月", "--from", day1, "--to", day2)
    assert (code, "100.0%" in out) == (0, True)
    assert cli("transitions", "代发-11月", "--from", "yesterday", "--to", day2)[0] == 2
    assert cli("transitions", "nope", "--from", day1, "--to", day2)[0] == 3
    assert cli("monitor", "代发-11月", "--stages", "column:last_seen_at")[0] == 4  # the stages are fixed: conflict
    code, out, _ = cli("fixed", "--json")
    assert [f["name"] for f in json.loads(out)] == ["代发-11月"]

    assert cli("size-rule", segment_id, "--drop", "20", "--json")[0] == 0
    assert cli("size-rule", segment_id)[0] == 2
    code, out, _ = cli("sizes", segment_id, "--json")
    assert (code, json.loads(out)["rule"]["drop_pct"]) == (0, 20.0)

    code, _, err = cli("lookalike", segment_id, "--size", "2")
    assert code == 2
    assert "a lookalike model needs at least 20" in err


def test_cli_lookalike_saves_a_segment_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = prepared(tmp_path / "data", planted_bank())
    args = ("segments", "lookalike", seed, "--size", "50", "--as-of", AS_OF.isoformat(), "--data-dir")
    code, out, _ = run_cli(monkeypatch, capsys, *args, str(tmp_path / "data"), "--json")
    assert code == 0
    printed = json.loads(out)
    assert printed["report"]["size"] == 50
    assert printed["report"]["auc"] > 0.7
    assert printed["report"]["excluded"] == ["payroll_customer"]
    assert printed["report"]["importances"][0]["feature"] in {"aum", "age"}
    code, out, _ = run_cli(monkeypatch, capsys, *args, str(tmp_path / "data"))
    assert code == 0
    assert "holdout AUC" in out
