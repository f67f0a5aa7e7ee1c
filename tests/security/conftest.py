"""A small analytics store with customers, OneID identities and events, for the personal-data tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import polars as pl
import pytest

from marketloop.adapters.duckdb_bank import DuckDBBankStore
from marketloop.adapters.duckdb_warehouse import DuckDBWarehouse
from marketloop.core.bank import CUSTOMERS
from marketloop.security.crypto import FieldCipher, FieldKeys

IDENTITIES = """
CREATE TABLE IF NOT EXISTS identities (
    id_type VARCHAR NOT NULL, id_value VARCHAR NOT NULL, one_id VARCHAR NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL, source VARCHAR NOT NULL, PRIMARY KEY (id_type, id_value)
)
"""
NAMES = ["张三", "李四", "王五", "欧阳娜娜"]


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    store = DuckDBWarehouse(tmp_path / "warehouse" / "events.duckdb")
    DuckDBBankStore(store.cursor, store.write_lock)
    for column in ("one_id", "id_type", "id_value"):  # as OneID adds them
        store.cursor().execute(f"ALTER TABLE events ADD COLUMN IF NOT EXISTS {column} VARCHAR")
    yield store
    store.close()


@pytest.fixture
def keys() -> FieldKeys:
    return FieldKeys.generate()


def customers_frame(cipher: FieldCipher, count: int = 4) -> pl.DataFrame:
    rows = []
    for n in range(count):
        name, phone = NAMES[n % len(NAMES)], f"1380013{n:04d}"
        rows.append(
            {
                "cust_no": f"C{n:04d}",
                "name_enc": cipher.encrypt(name, context="name_enc"),
                "name_prefix": name[:1],
                "phone_enc": cipher.encrypt(phone, context="phone_enc"),
                "phone_hash": cipher.keyed_hash("phone", phone),
                "id_card_hash": cipher.keyed_hash("id_card", f"11010119900101{n:04d}"),
                "email_enc": None if n % 2 else cipher.encrypt(f"c{n}@example.com", context="email_enc"),
                "branch_id": "B01",
                "open_date": datetime(2020, 1, 1).date(),
            }
        )
    return pl.DataFrame(rows)


def add_customers(warehouse: DuckDBWarehouse, cipher: FieldCipher, count: int = 4) -> None:
    DuckDBBankStore(warehouse.cursor, warehouse.write_lock).merge(CUSTOMERS, customers_frame(cipher, count))


def add_event(
    warehouse: DuckDBWarehouse,
    seq: int,
    *,
    user_id: str | None,
    one_id: str | None,
    at: datetime,
    traits: dict[str, object] | None = None,
    context: dict[str, object] | None = None,
    id_type: str | None = None,
    id_value: str | None = None,
) -> None:
    warehouse.cursor().execute(
        "INSERT INTO events (message_id, type, event, user_id, timestamp, received_at, source, properties, traits, "
        "context, load_seq, one_id, id_type, id_value) "
        "VALUES (?, 'track', 'login', ?, ?, ?, 'src', ?, ?, ?, ?, ?, ?, ?)",
        [
            f"m{seq}",
            user_id,
            at,
            at,
            orjson.dumps({"page": "home", "phone": "13800138000"}).decode(),
            orjson.dumps(traits or {}).decode(),
            orjson.dumps(context or {}).decode(),
            seq,
            one_id,
            id_type,
            id_value,
        ],
    )


JAN = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
