"""The identity service's batches: the garbage collector is paused while a batch links and persists, and is as
it was afterwards - when the batch fails too; the identifier cache gives the same identifiers as computing them."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from marketloop.core.events import Event
from marketloop.core.identities import Identifier, IdentityChanges
from marketloop.identity import service as service_module
from marketloop.identity.service import IdentityService
from marketloop.security.crypto import FieldCipher, FieldKeys
from marketloop.testing.clock import FrozenClock
from marketloop.testing.identity import MemoryIdentityStore

CIPHER = FieldCipher(FieldKeys.generate())


def record(message_id: str, **fields: Any) -> bytes:
    clock = FrozenClock()
    values: dict[str, Any] = {"type": "track", "event": "fund_page_view"} | fields
    return msgspec.json.encode(
        Event(message_id=message_id, source_id="src-app", received_at=clock.now(), timestamp=clock.now(), **values)
    )


class WatchingStore(MemoryIdentityStore):
    """Remembers whether the collector was on while it persisted; fails when told to."""

    def __init__(self) -> None:
        super().__init__()
        self.collector_on: list[bool] = []
        self.fail = False

    def persist(self, changes: IdentityChanges) -> int:
        self.collector_on.append(gc.isenabled())
        if self.fail:
            raise RuntimeError("disk full")
        return super().persist(changes)


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


@pytest.mark.usefixtures("collector_on")
def test_a_batch_pauses_the_collector_while_it_links_and_persists_but_not_while_the_loader_loads() -> None:
    store = WatchingStore()
    service = IdentityService(store, CIPHER, FrozenClock())
    with service.attribute([record("m1", user_id="U1", anonymous_id="a1")]) as attribution:
        assert gc.isenabled()  # the loader's own work runs with the collector as usual
    assert attribution.one_ids[0] is not None
    assert store.collector_on == [False]
    assert gc.isenabled()
    service.link_many([[Identifier("user_id", "U2"), Identifier("device_id", "d2")]], reason="import", source="f")
    assert store.collector_on == [False, False]
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_on")
def test_a_failed_batch_turns_the_collector_back_on() -> None:
    store = WatchingStore()
    store.fail = True
    service = IdentityService(store, CIPHER, FrozenClock())
    with pytest.raises(RuntimeError, match="disk full"), service.attribute([record("m1", user_id="U1")]):
        pass
    assert gc.isenabled()
    store.fail = False
    with service.attribute([record("m2", user_id="U2")]) as attribution:
        assert attribution.one_ids[0] is not None
    assert {key.split("\x1f")[1] for key in store.identities} == {"U1", "U2"}  # the failed batch's link was kept


def test_a_collector_turned_off_by_the_application_stays_off() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        service = IdentityService(WatchingStore(), CIPHER, FrozenClock())
        with service.attribute([record("m1", user_id="U1")]):
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


def test_cached_identifiers_equal_computed_ones_and_the_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "IDENTIFIER_CACHE_LIMIT", 3)
    cached = IdentityService(MemoryIdentityStore(), CIPHER, FrozenClock())
    raw = [
        ("phone", "+86 138-0013-8000"),
        ("phone", "12345"),  # not a mainland mobile: None
        ("email", " A@B.CN "),
        ("user_id", "  U1 "),
        ("cust_no", "   "),
        ("phone", "+86 138-0013-8000"),
        ("user_id", "x" * 300),  # over-long: None, and not kept
    ]
    for _ in range(2):
        for type_name, value in raw:
            fresh = IdentityService(MemoryIdentityStore(), CIPHER, FrozenClock())
            assert cached._identifier_or_none(type_name, value) == fresh._identifier_or_none(type_name, value)
            assert len(cached._values) <= 3
    phone = cached.identifier("phone", "13800138000")
    assert phone == Identifier("phone", CIPHER.keyed_hash("phone", "13800138000"))
    assert type(phone) is Identifier
    assert ("user_id", "x" * 300) not in cached._values
