"""Custom profile fields (自定义属性) in the warehouse: set once, removed, kept in history, refused when bad, and
shown on the 360° profile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from marketloop.adapters.duckdb_personal import DuckDBPersonalData
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.core.errors import MarketloopError

T0 = datetime(2026, 1, 5, 2, tzinfo=UTC)


@pytest.fixture
def container(tmp_path: Path) -> Container:
    opened = Container.open(Settings(data_dir=tmp_path / "data"))
    opened.warehouse.cursor().execute(
        "INSERT INTO customers (cust_no, branch_id, open_date) VALUES ('C1', 'B01', DATE '2020-01-01')"
    )
    yield opened  # type: ignore[misc]
    opened.close()


def test_a_field_is_set_once_removed_and_kept_in_history(container: Container) -> None:
    fields = container.attributes
    assert fields.set_attribute("preferred_product", "C1", "稳盈90天", at=T0)
    assert not fields.set_attribute("preferred_product", "C1", "稳盈90天", at=T0 + timedelta(hours=1))
    assert fields.set_attribute("preferred_product", "C1", "天天利", at=T0 + timedelta(days=1))
    assert fields.attributes_of("C1") == {"preferred_product": "天天利"}
    assert fields.set_attribute("preferred_product", "C1", None, at=T0 + timedelta(days=2))
    assert fields.attributes_of("C1") == {}
    history = fields.history("C1", "preferred_product")
    assert [(value, start, end) for value, start, end in history] == [
        ("稳盈90天", T0, T0 + timedelta(days=1)),
        ("天天利", T0 + timedelta(days=1), T0 + timedelta(days=2)),
    ]


@pytest.mark.parametrize(
    ("name", "customer", "value", "code"),
    [
        ("Bad-Name", "C1", "x", "attributes.bad-name"),
        ("note", "C404", "x", "attributes.unknown-customer"),
        ("note", "C1", "x" * 1001, "attributes.too-long"),
    ],
)
def test_bad_fields_are_refused_with_a_reason(
    container: Container, name: str, customer: str, value: str, code: str
) -> None:
    with pytest.raises(MarketloopError) as caught:
        container.attributes.set_attribute(name, customer, value, at=T0)
    assert caught.value.code == code
    assert container.attributes.attributes_of("C1") == {}


def test_the_profile_shows_the_fields(container: Container) -> None:
    container.attributes.set_attribute("preferred_product", "C1", "稳盈90天", at=T0)
    assert container.profiles.profile("C1").attributes == {"preferred_product": "稳盈90天"}


def test_erasing_a_customer_deletes_their_fields_and_history(container: Container) -> None:
    container.attributes.set_attribute("note", "C1", "客户说下周三有空", at=T0)
    store = DuckDBPersonalData(container.warehouse.cursor, container.warehouse.write_lock)
    counts = store.erase_customer("C1", lambda properties: properties)
    assert counts.customer_rows >= 2
    assert container.attributes.attributes_of("C1") == {}
    assert container.attributes.history("C1", "note") == []
