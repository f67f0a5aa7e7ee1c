"""With OneID: events belong to the customer whose cust_no shares their OneID, and any identifier finds it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from marketloop.adapters.duckdb_identity import DuckDBIdentityStore
from marketloop.core.events import Event
from marketloop.identity.service import IdentityService
from marketloop.profiles.lookup import EventIdentityLookup, OneIdLookup
from marketloop.profiles.service import ProfileService

from .conftest import open_bank


def _event(message_id: str, at: datetime, name: str | None, **fields: Any) -> bytes:
    kind = fields.pop("kind", "track")
    return msgspec.json.encode(
        Event(message_id=message_id, type=kind, source_id="app", received_at=at, timestamp=at, event=name, **fields)
    )


# The app's login id u-1 is not a customer number; an identify message links it to C001.
LINKED = [
    _event("O1", datetime(2026, 3, 28, 8, tzinfo=UTC), None, kind="identify", user_id="u-1",
           traits={"cust_no": "C001"}),
    _event("O2", datetime(2026, 3, 28, 9, tzinfo=UTC), "wealth_product_view", user_id="u-1",
           context={"device": {"id": "d-7"}, "library": {"$lib": "MiniProgram"}}),
    _event("O3", datetime(2026, 3, 31, 11, tzinfo=UTC), "login", anonymous_id="a-9", user_id="u-1",
           context={"library": {"$lib": "iOS"}}),
]  # fmt: skip


@pytest.fixture(scope="module")
def oneid_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProfileService]:
    with open_bank(tmp_path_factory.mktemp("oneid")) as bank:
        warehouse = bank.warehouse
        store = DuckDBIdentityStore(warehouse.cursor, warehouse.write_lock)
        identity = IdentityService(store, bank.cipher, bank.clock)
        staged = warehouse.stage("test", 0, LINKED, key_paths=identity.key_paths)
        with identity.attribute([LINKED[i] for i in staged.firsts]) as attribution:
            warehouse.load(staged, 100, attribution=attribution)
        lookup = OneIdLookup(identity, EventIdentityLookup(bank.store))
        service = ProfileService(bank.store, bank.cipher, bank.clock, identities=lookup)
        service.refresh()
        yield service


def test_events_of_a_linked_login_id_count_for_the_customer(oneid_service: ProfileService) -> None:
    behaviour = oneid_service.profile("C001").behaviour
    # E1-E4 (by user_id = cust_no, loaded before OneID) and O1-O3 (by OneID)
    assert behaviour["events_30d"] == 7
    assert behaviour["logins_30d"] == 3
    assert behaviour["wealth_page_views_30d"] == 2
    assert behaviour["last_seen_at"] == datetime(2026, 3, 31, 11, tzinfo=UTC)
    assert behaviour["last_seen_by_platform"]["mini_program"] == datetime(2026, 3, 28, 9, tzinfo=UTC)


@pytest.mark.parametrize("identifier", ["user_id:u-1", "device_id:d-7", "anonymous_id:a-9", "user_id:C001"])
def test_oneid_identifiers_find_the_customer(oneid_service: ProfileService, identifier: str) -> None:
    assert oneid_service.resolve(identifier) == "C001"


def test_identities_come_from_the_graph(oneid_service: ProfileService) -> None:
    identities = {(i.type, i.value) for i in oneid_service.profile("C001").identities}
    assert {("user_id", "u-1"), ("device_id", "d-7"), ("anonymous_id", "a-9"), ("cust_no", "C001")} <= identities
    assert any(kind == "one_id" for kind, _ in identities)


def test_timeline_includes_events_found_through_oneid(oneid_service: ProfileService) -> None:
    items = oneid_service.timeline("user_id:u-1", limit=3).items
    assert [i.message_id for i in items] == ["O3", "E1", "E3"]
