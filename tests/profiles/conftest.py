"""A small bank whose profile figures are worked out by hand in the tests (as of 2026-03-31 12:00 UTC).

Customers:
* C001 张三, 13800001234, Shanghai, gold by AUM: deposits, wealth, a fund, a
  mortgage and a credit card with balance changes inside the trend window;
  salary, other-bank transfers and card spending; app and H5 events, one
  of them before login on a device later used to log in.
* C002 李四四, 13900005678, Beijing: nothing but the customer row; born on the
  refresh date 66 years before.
* C003 欧阳娜娜, no phone, Beijing, private by AUM (6,000,000 in wealth).
* C004 张伟, 13700000000, Shanghai: standard, a small deposit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest

from marketloop.adapters.duckdb_bank import DuckDBBankStore
from marketloop.adapters.duckdb_profiles import DuckDBProfileStore
from marketloop.adapters.duckdb_warehouse import DuckDBWarehouse
from marketloop.core import bank
from marketloop.core.events import Event
from marketloop.core.identifiers import normalise_phone
from marketloop.core.personal import family_name
from marketloop.ports.bank import BankStore
from marketloop.profiles.service import ProfileService
from marketloop.security.crypto import FieldCipher, FieldKeys
from marketloop.testing.clock import FrozenClock

AS_OF = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)

CUSTOMERS: list[dict[str, Any]] = [
    {
        "cust_no": "C001", "name": "张三", "phone": "13800001234", "gender": "M", "birth_date": date(1990, 4, 2),
        "city": "上海", "city_tier": 1, "occupation": "employee", "marital_status": "married",
        "education": "bachelor", "risk_tolerance": "C3", "risk_assessed_at": date(2024, 12, 1),
        "vip_level": "gold", "branch_id": "B01", "rm_id": "R02", "open_date": date(2020, 5, 15),
        "status": "active", "credit_rating": "A", "fraud_flag": False,
    },
    {
        "cust_no": "C002", "name": "李四四", "phone": "139-0000-5678", "gender": "F", "birth_date": date(1960, 3, 31),
        "city": "北京", "city_tier": 1, "occupation": "retired", "marital_status": "widowed",
        "education": "high_school", "risk_tolerance": "C1", "risk_assessed_at": date(2025, 6, 1),
        "vip_level": None, "branch_id": "B02", "rm_id": None, "open_date": date(2026, 3, 1),
        "status": "active", "credit_rating": None, "fraud_flag": True,
    },
    {
        "cust_no": "C003", "name": "欧阳娜娜", "phone": None, "gender": "F", "birth_date": date(1980, 1, 1),
        "city": "北京", "city_tier": 1, "occupation": "business_owner", "marital_status": "married",
        "education": "master", "risk_tolerance": "C5", "risk_assessed_at": None, "vip_level": "private",
        "branch_id": "B02", "rm_id": "R03", "open_date": date(2010, 1, 1), "status": "active",
        "credit_rating": "AA", "fraud_flag": None,
    },
    {
        "cust_no": "C004", "name": "张伟", "phone": "13700000000", "gender": "M", "birth_date": date(1999, 12, 31),
        "city": "上海", "city_tier": 1, "occupation": "student", "marital_status": "single",
        "education": "bachelor", "risk_tolerance": "C2", "risk_assessed_at": date(2026, 1, 1),
        "vip_level": "standard", "branch_id": "B01", "rm_id": "R01", "open_date": date(2025, 1, 1),
        "status": "active", "credit_rating": "B", "fraud_flag": False,
    },
]  # fmt: skip

PRODUCTS = [
    ("DEP-DEMAND", "活期存款", "deposit", None),
    ("DEP-TD-1Y", "整存整取一年", "deposit", None),
    ("WM-90", "稳享90天", "wealth", "R2"),
    ("FD-1", "货币基金", "fund", "R1"),
    ("INS-1", "年金保险", "insurance", None),
    ("LN-MORT", "个人住房贷款", "loan", None),
    ("LN-CONS", "个人消费贷款", "loan", None),
    ("CC-STD", "标准信用卡", "credit_card", None),
]

HOLDING_KEYS = ("holding_id", "cust_no", "product_code", "balance", "valid_from", "valid_to", "maturity_date",
                "credit_limit")  # fmt: skip
HOLDINGS = [
    ("H1", "C001", "DEP-DEMAND", 10_000, date(2026, 1, 1), date(2026, 3, 15), None, None),
    ("H1", "C001", "DEP-DEMAND", 30_000, date(2026, 3, 16), None, None, None),
    ("H2", "C001", "DEP-TD-1Y", 100_000, date(2025, 4, 5), None, date(2026, 4, 5), None),
    ("H3", "C001", "WM-90", 50_000, date(2026, 1, 10), date(2026, 3, 20), date(2026, 4, 25), None),
    ("H3", "C001", "WM-90", 60_000, date(2026, 3, 21), None, date(2026, 4, 25), None),
    ("H4", "C001", "FD-1", 20_000, date(2026, 3, 10), None, None, None),
    ("H5", "C001", "LN-MORT", 800_000, date(2025, 1, 1), date(2026, 3, 30), None, None),
    ("H5", "C001", "LN-MORT", 795_000, date(2026, 3, 31), None, None, None),
    ("H6", "C001", "CC-STD", 5_000, date(2026, 3, 1), None, None, 20_000),
    ("H7", "C001", "INS-1", 9_999, date(2026, 4, 1), None, None, None),  # starts after the refresh date
    ("H8", "C001", "DEP-DEMAND", 7_777, date(2025, 1, 1), date(2025, 12, 31), None, None),  # closed before
    ("H9", "C003", "WM-90", 6_000_000, date(2025, 12, 1), None, date(2026, 5, 1), None),
    ("H10", "C004", "DEP-DEMAND", 1_000, date(2026, 3, 1), None, None, None),
]

TRANSACTION_KEYS = ("txn_id", "cust_no", "ts", "amount", "direction", "channel", "counterparty_type", "category")
TRANSACTIONS = [
    ("T1", "C001", datetime(2026, 3, 10, 2, tzinfo=UTC), 15_000, "in", "online", "employer", "salary"),
    ("T2", "C001", datetime(2026, 3, 20, 8, tzinfo=UTC), 2_000, "out", "mobile", "other_bank", "transfer"),
    ("T3", "C001", datetime(2026, 3, 25, 8, tzinfo=UTC), 500, "out", "pos", "merchant", "consumption"),
    ("T4", "C001", datetime(2026, 2, 10, 2, tzinfo=UTC), 15_000, "in", "online", "employer", "salary"),
    ("T5", "C001", datetime(2026, 1, 15, 8, tzinfo=UTC), 8_000, "out", "mobile", "other_bank", "transfer"),
    ("T6", "C001", datetime(2025, 11, 1, 8, tzinfo=UTC), 1_000, "in", "counter", "self", "transfer"),  # > 90 days
    ("T7", "C001", datetime(2026, 4, 2, 8, tzinfo=UTC), 999, "in", "mobile", "self", "transfer"),  # after as_of
    ("T8", "C004", datetime(2026, 3, 30, 8, tzinfo=UTC), 100, "out", "wechat", "merchant", "consumption"),
]


def _event(message_id: str, at: datetime, name: str, *, kind: str = "track", **fields: Any) -> bytes:
    return msgspec.json.encode(
        Event(message_id=message_id, type=kind, source_id="app", received_at=at, timestamp=at, event=name, **fields)
    )


IOS = {"library": {"$lib": "iOS"}}
WEB = {"library": {"name": "analytics.js"}}
ANDROID = {"library": {"$lib": "Android"}}
EVENTS = [
    _event("E1", datetime(2026, 3, 30, 9, tzinfo=UTC), "login", user_id="C001", anonymous_id="dev-1", context=IOS),
    _event("E2", datetime(2026, 3, 29, 10, tzinfo=UTC), "wealth_list", kind="page", user_id="C001", context=WEB),
    _event(
        "E3", datetime(2026, 3, 29, 10, 5, tzinfo=UTC), "fund_detail_view", user_id="C001", context=IOS,
        properties={"fund_code": "FD-1"},
    ),
    _event("E4", datetime(2026, 3, 20, 8, tzinfo=UTC), "login", anonymous_id="dev-1", context=ANDROID),
    _event("E5", datetime(2026, 2, 1, 8, tzinfo=UTC), "login", user_id="C001", context=IOS),
    _event("E6", datetime(2026, 3, 30, 9, tzinfo=UTC), "login", user_id="X999", context=IOS),  # not a customer
]  # fmt: skip


def _frame(rows: list[dict[str, Any]], spec: bank.TableSpec) -> pl.DataFrame:
    return pl.DataFrame(rows, infer_schema_length=None).select([c for c in spec.names if c in rows[0]])


def customer_rows(cipher: FieldCipher) -> pl.DataFrame:
    rows = []
    for c in CUSTOMERS:
        row = {k: v for k, v in c.items() if k not in {"name", "phone"}}
        phone = normalise_phone(c["phone"]) if c["phone"] else None
        row |= {
            "name_enc": cipher.encrypt(c["name"], context="name_enc"),
            "name_prefix": family_name(c["name"]),
            "phone_enc": cipher.encrypt(phone, context="phone_enc") if phone else None,
            "phone_hash": cipher.keyed_hash("phone", phone) if phone else None,
        }
        rows.append(row)
    return _frame(rows, bank.CUSTOMERS)


def fill_bank(store: BankStore, cipher: FieldCipher) -> None:
    store.append(bank.CUSTOMERS, customer_rows(cipher))
    store.append(
        bank.BRANCHES,
        pl.DataFrame({"branch_id": ["B01", "B02"], "name": ["上海分行", "北京分行"], "level": [1, 1]}),
    )
    store.append(
        bank.RELATIONSHIP_MANAGERS,
        pl.DataFrame(
            {"rm_id": ["R01", "R02", "R03"], "name": ["王经理", "赵经理", "钱经理"], "branch_id": ["B01", "B01", "B02"]}
        ),
    )
    store.append(
        bank.PRODUCTS,
        pl.DataFrame(
            [dict(zip(("product_code", "name", "product_type", "risk_level"), p, strict=True)) for p in PRODUCTS]
        ),
    )
    store.append(bank.HOLDINGS, _frame([dict(zip(HOLDING_KEYS, h, strict=True)) for h in HOLDINGS], bank.HOLDINGS))
    txns = [dict(zip(TRANSACTION_KEYS, t, strict=True)) for t in TRANSACTIONS]
    store.append(bank.TRANSACTIONS, _frame(txns, bank.TRANSACTIONS))
    store.append(
        bank.PAYROLL,
        pl.DataFrame({"cust_no": ["C001"], "employer_id": ["E1"], "employer_name": ["上海科技公司"],
                      "start_date": [date(2024, 1, 1)]}),
    )  # fmt: skip
    store.append(
        bank.RM_ASSIGNMENTS,
        pl.DataFrame({"cust_no": ["C001", "C001"], "rm_id": ["R02", "R01"],
                      "valid_from": [date(2023, 1, 1), date(2025, 1, 1)], "valid_to": [date(2024, 12, 31), None]}),
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Bank:
    """The small bank in a warehouse, with the profile store and service over it (not yet refreshed)."""

    warehouse: DuckDBWarehouse
    cipher: FieldCipher
    store: DuckDBProfileStore
    clock: FrozenClock
    service: ProfileService


@contextmanager
def open_bank(path: Path) -> Iterator[Bank]:
    warehouse = DuckDBWarehouse(path / "warehouse" / "events.duckdb")
    try:
        cipher, clock = FieldCipher(FieldKeys.generate()), FrozenClock(AS_OF)
        fill_bank(DuckDBBankStore(warehouse.cursor, warehouse.write_lock), cipher)
        warehouse.load(warehouse.stage("test", 0, EVENTS), len(EVENTS) - 1)
        store = DuckDBProfileStore(warehouse.cursor, warehouse.write_lock)
        yield Bank(
            warehouse=warehouse, cipher=cipher, store=store, clock=clock, service=ProfileService(store, cipher, clock)
        )
    finally:
        warehouse.close()


@pytest.fixture
def bank_env(tmp_path: Path) -> Iterator[Bank]:
    """A bank of its own, for tests that change it."""
    with open_bank(tmp_path) as opened:
        yield opened


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProfileService]:
    """A refreshed bank shared by a module's tests, which must only read it."""
    with open_bank(tmp_path_factory.mktemp("bank")) as opened:
        opened.service.refresh()
        yield opened.service


@pytest.fixture
def clock(bank_env: Bank) -> FrozenClock:
    return bank_env.clock


@pytest.fixture
def cipher(bank_env: Bank) -> FieldCipher:
    return bank_env.cipher


@pytest.fixture
def warehouse(bank_env: Bank) -> DuckDBWarehouse:
    return bank_env.warehouse


@pytest.fixture
def store(bank_env: Bank) -> DuckDBProfileStore:
    return bank_env.store


@pytest.fixture
def service(bank_env: Bank) -> ProfileService:
    return bank_env.service


@pytest.fixture
def refreshed(service: ProfileService) -> ProfileService:
    service.refresh()
    return service
