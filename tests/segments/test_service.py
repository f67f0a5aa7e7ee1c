"""The segment service through the real wiring: count, save versions, references, materialise, export; CLI and API."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.core.errors import MarketloopError
from marketloop.segments.catalog import DEFAULT_CATALOG
from marketloop.segments.evaluate import evaluate
from marketloop.segments.parse import parse_definition
from marketloop.segments.resolve import resolve
from marketloop.testing.access import approved, grant
from marketloop.testing.cli import run_cli
from marketloop.testing.segments import AS_OF, PROFILE_COLUMNS, SmallBank, ddl, facts, inserts, random_bank, tables

BEHAVIOUR = 'city in ("上海", "杭州") and did login within 30d'
PROFILED = {"and": [{"field": "age", "op": ">=", "value": 30}, {"did": "view_wealth", "within": "30d"}]}


def expected(bank: SmallBank, source: object) -> set[str]:
    bound = resolve(parse_definition(source), DEFAULT_CATALOG)  # type: ignore[arg-type]
    return {c for c, customer in facts(bank).items() if evaluate(bound, customer, AS_OF)}


def load(container: Container, bank: SmallBank) -> None:
    """The bank's rows into the container's warehouse; `customer_profile` is left unbuilt."""
    con = container.warehouse.cursor()
    for name, columns, rows in tables(bank):
        insert = inserts("duckdb", name, columns, rows)
        if insert and name != "customer_profile":
            con.execute(insert)


def build_profile(container: Container, bank: SmallBank) -> None:
    columns = {"cust_no": PROFILE_COLUMNS["vip_tier"]} | PROFILE_COLUMNS
    con = container.warehouse.cursor()
    con.execute(ddl("duckdb", "customer_profile", columns))
    con.execute(inserts("duckdb", "customer_profile", columns, bank.profiles) or "")


@pytest.fixture(scope="module")
def bank() -> SmallBank:
    return random_bank(random.Random(7), 60)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, bank: SmallBank) -> Path:
    """A data directory with the bank loaded, copied for each test (opening a container costs more)."""
    folder = tmp_path_factory.mktemp("segments") / "data"
    container = Container.open(Settings(data_dir=folder))
    try:
        load(container, bank)
    finally:
        container.close()
    return folder


@pytest.fixture
def data_dir(tmp_path: Path, loaded: Path) -> Path:
    return Path(shutil.copytree(loaded, tmp_path / "data"))


@pytest.fixture
def container(data_dir: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=data_dir))
    try:
        yield opened
    finally:
        opened.close()


def test_count_matches_the_evaluator_in_both_forms(container: Container, bank: SmallBank) -> None:
    by_text = container.segments.count(BEHAVIOUR, as_of=AS_OF)
    document = {"and": [{"field": "city", "op": "in", "value": ["上海", "杭州"]}, {"did": "login", "within": "30d"}]}
    by_json = container.segments.count(json.dumps(document), as_of=AS_OF)
    assert by_text.count == by_json.count == len(expected(bank, BEHAVIOUR)) > 0
    assert by_text.as_of == AS_OF
    assert by_text.ms >= 0


def test_a_profile_field_before_the_profile_is_built_is_a_conflict(container: Container, bank: SmallBank) -> None:
    with pytest.raises(MarketloopError) as raised:
        container.segments.count(PROFILED, as_of=AS_OF)
    assert raised.value.code == "segments.missing-relation"
    build_profile(container, bank)
    assert container.segments.count(PROFILED, as_of=AS_OF).count == len(expected(bank, PROFILED))


def test_versions_references_and_cycles(container: Container, bank: SmallBank) -> None:
    segments = container.segments
    first = segments.save("上海杭州活跃", BEHAVIOUR)
    second = segments.save("上海杭州活跃", BEHAVIOUR + ' and gender = "F"', segment_id=first.segment_id)
    assert (first.version, second.version) == (1, 2)
    assert [s.version for s in segments.list()] == [2]
    assert segments.get(first.segment_id, 1).definition == first.definition
    wider = segments.save("引用", f'segment "{first.segment_id}" or tag rfm = "a"')
    found = segments.count(f'segment "{wider.segment_id}"', as_of=AS_OF).count
    assert found == len(expected(bank, f'({BEHAVIOUR} and gender = "F") or tag rfm = "a"'))
    with pytest.raises(MarketloopError) as raised:
        segments.save("环", f'segment "{wider.segment_id}"', segment_id=first.segment_id)
    assert raised.value.errors[0].detail.endswith("[segment-cycle]")
    assert segments.compiled(wider.segment_id).needs == {"attributes", "events", "tags"}


def test_materialise_then_export_csv_and_parquet(container: Container, bank: SmallBank, tmp_path: Path) -> None:
    saved = container.segments.save("活跃", BEHAVIOUR)
    snapshot = container.segments.materialise(saved.segment_id, as_of=AS_OF)
    members = expected(bank, BEHAVIOUR)
    assert (snapshot.customers, snapshot.version, snapshot.as_of) == (len(members), 1, AS_OF)
    audit = container.audit
    as_csv = container.segments.export(saved.segment_id, tmp_path / "members.csv", "csv", audit=audit)
    as_parquet = container.segments.export(saved.segment_id, tmp_path / "members.parquet", "parquet", audit=audit)
    assert as_csv.snapshot == as_parquet.snapshot == snapshot
    assert pl.read_csv(as_csv.path, comment_prefix="#")["cust_no"].to_list() == sorted(members)
    assert pl.read_parquet(as_parquet.path)["cust_no"].to_list() == sorted(members)
    assert container.segments.snapshots(saved.segment_id) == [snapshot]


def test_cli_count_prints_count_and_ms(
    data_dir: Path, bank: SmallBank, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = tmp_path / "active.seg"
    definition.write_text(BEHAVIOUR, encoding="utf-8")
    args = ("segments", "count", "--definition", str(definition), "--as-of", AS_OF.isoformat(), "--data-dir")
    code, out, _ = run_cli(monkeypatch, capsys, *args, str(data_dir), "--json")
    assert code == 0
    printed = json.loads(out)
    assert list(printed) == ["count", "ms"]
    assert printed["count"] == len(expected(bank, BEHAVIOUR))
    definition.write_text("city = 1 and\n  did login within 0d", encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, *args, str(data_dir), "--json")
    assert code == 2
    assert f"{definition}:1:8: city is text; 1 is not [wrong-type]" in err
    assert f"{definition}:2:20: within must be a positive duration, not 0s [impossible-window]" in err


@pytest.fixture
def client(container: Container) -> TestClient:
    return TestClient(create_app(container), headers=grant(container.access, "admin"))  # no lifespan: no loader


def test_api_counts_saves_materialises_and_exports(client: TestClient, bank: SmallBank) -> None:
    counted = client.post("/v1/segments/count", json={"definition": BEHAVIOUR, "as_of": AS_OF.isoformat()})
    assert counted.status_code == 200
    assert counted.json()["count"] == len(expected(bank, BEHAVIOUR))
    saved = client.post("/v1/segments", json={"name": "活跃", "definition": {"did": "login", "within": "30d"}})
    assert saved.status_code == 201
    segment_id = saved.json()["segment_id"]
    assert [s["segment_id"] for s in client.get("/v1/segments").json()] == [segment_id]
    snapshot = client.post(f"/v1/segments/{segment_id}/materialise", json={"as_of": AS_OF.isoformat()})
    assert snapshot.json()["customers"] == len(expected(bank, {"did": "login", "within": "30d"}))
    access = client.app.state.container.access
    approval = approved(access, client.headers, "segment.export", f"segment:{segment_id}")
    exported = client.get(f"/v1/segments/{segment_id}/export", params={"format": "csv", "approval": approval})
    assert exported.headers["content-type"].startswith("text/csv")
    watermark, header, *rows = exported.text.splitlines()
    assert watermark.startswith("# marketloop_exported_by=user:test-admin-")
    assert header == "cust_no"
    assert len(rows) == snapshot.json()["customers"]
    assert client.get("/v1/segments/seg_nope").status_code == 404


def test_api_bad_definitions_are_problems_pointing_at_the_spot(client: TestClient) -> None:
    body = {
        "definition": {"and": [{"field": "age", "op": ">=", "value": 30}, {"field": "agee", "op": ">", "value": 1}]}
    }
    response = client.post("/v1/segments/count", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/segments.invalid-definition")
    assert [e["pointer"] for e in problem["errors"]] == ["/definition/and/1/field"]
    response = client.post("/v1/segments", json={"name": "x", "definition": "age >= 30 and\n  did login within 0d"})
    assert response.status_code == 400
    assert [(e["line"], e["column"]) for e in response.json()["errors"]] == [(2, 20)]
