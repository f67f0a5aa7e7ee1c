"""Erasure of one customer's personal data and the retention purge of raw events."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from marketloop.adapters.duckdb_personal import DuckDBPersonalData
from marketloop.adapters.duckdb_warehouse import DuckDBWarehouse
from marketloop.adapters.sql.audit import SqlAuditStore
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.core.errors import MarketloopError
from marketloop.security.audit import AuditLog
from marketloop.security.crypto import FieldCipher, FieldKeys
from marketloop.security.erasure import PersonalDataService, scrub
from marketloop.testing.clock import FrozenClock

from .conftest import IDENTITIES, JAN, add_customers, add_event


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    engine: sa.Engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    upgrade(engine)
    return AuditLog(SqlAuditStore(engine), FrozenClock())


@pytest.fixture
def service(warehouse: DuckDBWarehouse, audit: AuditLog) -> PersonalDataService:
    return PersonalDataService(
        DuckDBPersonalData(warehouse.cursor, warehouse.write_lock), FrozenClock(JAN + timedelta(days=400)), audit=audit
    )


def _bank_with_events(warehouse: DuckDBWarehouse, keys: FieldKeys) -> None:
    add_customers(warehouse, FieldCipher(keys), count=3)
    con = warehouse.cursor()
    con.execute(IDENTITIES)
    for id_type, id_value, one_id in [("cust_no", "C0001", "O1"), ("phone", "hash1", "O1"), ("device_id", "d1", "O1"),
                                      ("cust_no", "C0002", "O2"), ("phone", "hash2", "O2")]:  # fmt: skip
        con.execute("INSERT INTO identities VALUES (?, ?, ?, now(), 'test')", [id_type, id_value, one_id])
    traits = {"name": "李四", "phone": "13800130001", "vip": "gold", "address": {"city": "上海"}}
    context = {"ip": "10.0.0.1", "traits": {"email": "c1@example.com"}, "os": {"name": "iOS"}}
    add_event(warehouse, 1, user_id="C0001", one_id="O1", at=JAN, traits=traits, context=context)
    add_event(warehouse, 2, user_id=None, one_id="O1", at=JAN, id_type="device_id", id_value="d1")
    add_event(warehouse, 3, user_id="C0002", one_id="O2", at=JAN, traits={"phone": "13800130002"})


def test_scrub_removes_personal_keys_at_any_depth() -> None:
    document = {"Phone": "1", "vip": "gold", "nested": {"email": "x", "ok": [{"id_card": "1", "n": 1}]}}
    assert scrub(document) == {"vip": "gold", "nested": {"ok": [{"n": 1}]}}
    assert document["Phone"] == "1"  # not changed in place


def test_erase_removes_personal_data_and_keeps_rows(
    warehouse: DuckDBWarehouse, keys: FieldKeys, service: PersonalDataService, audit: AuditLog
) -> None:
    _bank_with_events(warehouse, keys)
    result = service.erase("C0001", reason="customer request, ticket 42")
    assert (result.counts.customer_rows, result.counts.identities, result.counts.events) == (1, 2, 2)
    con = warehouse.cursor()
    row = con.execute(
        "SELECT name_enc, name_prefix, phone_enc, phone_hash, id_card_hash, email_enc, branch_id "
        "FROM customers WHERE cust_no = 'C0001'"
    ).fetchone()
    assert row == (None, None, None, None, None, None, "B01")
    assert con.execute("SELECT id_type FROM identities WHERE one_id = 'O1'").fetchall() == [("cust_no",)]
    traits, context, properties, _id_value = con.execute(
        "SELECT traits, context, properties, id_value FROM events WHERE message_id = 'm1'"
    ).fetchone()
    assert orjson.loads(traits) == {"vip": "gold"}
    assert orjson.loads(context) == {"traits": {}, "os": {"name": "iOS"}}
    assert orjson.loads(properties) == {"page": "home"}
    assert con.execute("SELECT id_value FROM events WHERE message_id = 'm2'").fetchone() == (None,)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (3,)  # aggregates still add up
    # Others are untouched.
    assert con.execute("SELECT phone_hash IS NOT NULL FROM customers WHERE cust_no = 'C0002'").fetchone() == (True,)
    assert "13800130002" in con.execute("SELECT traits FROM events WHERE message_id = 'm3'").fetchone()[0]
    entry = audit.entries(action="customer.erase")[0]
    assert entry.target == "customer:C0001"
    assert entry.details_dict["events"] == 2
    assert "李四" not in entry.details
    assert "1380013" not in entry.details


def test_erase_is_idempotent(warehouse: DuckDBWarehouse, keys: FieldKeys, service: PersonalDataService) -> None:
    _bank_with_events(warehouse, keys)
    service.erase("C0001", reason="request")
    again = service.erase("C0001", reason="request")
    assert (again.counts.customer_rows, again.counts.identities, again.counts.events) == (0, 0, 0)


def test_erase_without_identity_tables(
    warehouse: DuckDBWarehouse, keys: FieldKeys, service: PersonalDataService
) -> None:
    add_customers(warehouse, FieldCipher(keys), count=2)
    add_event(warehouse, 1, user_id="C0000", one_id=None, at=JAN, traits={"email": "x@example.com"})
    counts = service.erase("C0000", reason="request").counts
    assert (counts.customer_rows, counts.identities, counts.events) == (1, 0, 1)


def test_erase_needs_a_reason(service: PersonalDataService) -> None:
    with pytest.raises(MarketloopError, match="reason"):
        service.erase("C0001", reason=" ")


def test_purge_keeps_daily_counts(warehouse: DuckDBWarehouse, service: PersonalDataService, audit: AuditLog) -> None:
    for n in range(5):
        add_event(warehouse, n, user_id="C1", one_id=None, at=JAN + timedelta(days=n % 2))
    add_event(warehouse, 10, user_id="C1", one_id=None, at=JAN + timedelta(days=390))
    result = service.purge_events(older_than_days=30)
    assert result.counts.events == 5
    con = warehouse.cursor()
    assert con.execute("SELECT count(*) FROM events").fetchone() == (1,)
    counts = con.execute("SELECT day, event, events FROM event_daily_counts ORDER BY day").fetchall()
    assert [(str(day), event, n) for day, event, n in counts] == [
        ("2026-01-05", "login", 3),
        ("2026-01-06", "login", 2),
    ]
    add_event(warehouse, 20, user_id="C1", one_id=None, at=JAN)  # arrived late
    service.purge_events(older_than_days=30)
    assert con.execute("SELECT events FROM event_daily_counts WHERE day = DATE '2026-01-05'").fetchone() == (4,)
    assert audit.entries(action="events.purge")[0].details_dict["events"] == 1


def test_purge_needs_a_window_of_a_day(service: PersonalDataService) -> None:
    with pytest.raises(MarketloopError):
        service.purge_events(older_than_days=0)
