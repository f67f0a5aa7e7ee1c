"""The identity service: which identifiers an event carries, batch attribution for the loader, persistence."""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from marketloop.collect.sensors_format import decode_sensors_query
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import Event
from marketloop.core.identities import Identifier, IdentityChanges
from marketloop.identity.service import IdentityService
from marketloop.ports.warehouse import Attribution
from marketloop.security.crypto import FieldCipher, FieldKeys
from marketloop.testing.clock import FrozenClock
from marketloop.testing.identity import MemoryIdentityStore

CIPHER = FieldCipher(FieldKeys.generate())


def event(message_id: str, **fields: Any) -> Event:
    clock = FrozenClock()
    values: dict[str, Any] = {"type": "track", "event": "fund_page_view"} | fields
    return Event(message_id=message_id, source_id="src-app", received_at=clock.now(), timestamp=clock.now(), **values)


def record(message_id: str, **fields: Any) -> bytes:
    return msgspec.json.encode(event(message_id, **fields))


@pytest.fixture
def store() -> MemoryIdentityStore:
    return MemoryIdentityStore()


@pytest.fixture
def service(store: MemoryIdentityStore) -> IdentityService:
    return IdentityService(store, CIPHER, FrozenClock())


def attribute(service: IdentityService, records: Sequence[bytes]) -> Attribution:
    with service.attribute(records) as attribution:
        return attribution


def test_identifiers_of_follows_the_documented_fields(service: IdentityService) -> None:
    found = service.identifiers_of(
        event(
            "m1",
            type="identify",
            user_id="U1",
            anonymous_id="a1",
            traits={"cust_no": "C1", "phone": 13800138000, "id_card": "11010519491231002x", "email": "A@B.CN"},
            context={"device": {"id": "d1"}, "wechat": {"appid": "wx1", "openid": "o1", "unionid": "un1"}},
        )
    )
    assert set(found) == {
        Identifier("user_id", "U1"),
        Identifier("anonymous_id", "a1"),
        Identifier("cust_no", "C1"),
        Identifier("phone", CIPHER.keyed_hash("phone", "13800138000")),
        Identifier("id_card", CIPHER.keyed_hash("id_card", "11010519491231002X")),
        Identifier("email", CIPHER.keyed_hash("email", "a@b.cn")),
        Identifier("device_id", "d1"),
        Identifier("wechat_openid", "wx1:o1"),
        Identifier("wechat_unionid", "un1"),
    }


def test_alias_previous_ids_sensors_device_ids_and_bad_values(service: IdentityService) -> None:
    alias = event("m1", type="alias", user_id="U1", previous_id="a0")
    assert set(service.identifiers_of(alias)) == {Identifier("user_id", "U1"), Identifier("anonymous_id", "a0")}
    sensors = event("m2", anonymous_id="a1", properties={"$device_id": "d9"})
    assert Identifier("device_id", "d9") in service.identifiers_of(sensors)
    bad = event(
        "m3",
        anonymous_id="a1",
        traits={"phone": "12345", "id_card": "110105194912310021", "cust_no": {"x": 1}},
        context={"device": "not-an-object", "wechat": {"openid": "o1"}},
    )
    assert service.identifiers_of(bad) == [Identifier("anonymous_id", "a1")]


def test_every_event_of_a_batch_gets_the_oneid_of_its_best_identifier(
    service: IdentityService, store: MemoryIdentityStore
) -> None:
    records = [
        record("m1", anonymous_id="a1"),
        record("m2", anonymous_id="a1"),
        record("m3", type="identify", anonymous_id="a1", user_id="U1", traits={"cust_no": "C1"}),
        record("m4", user_id="U1"),
        record("m5", anonymous_id="a2", quarantined=True),
        b"{not json",
    ]
    attribution = attribute(service, records)
    person = service.resolve(Identifier("cust_no", "C1"))
    assert person is not None
    assert list(attribution.one_ids) == [person] * 4 + [None, None]
    assert list(attribution.id_types) == ["anonymous_id", "anonymous_id", "cust_no", "user_id", None, None]
    assert list(attribution.id_values) == ["a1", "a1", "C1", "U1", None, None]
    assert service.resolve(Identifier("anonymous_id", "a2")) is None, "quarantined events link nothing"
    assert store.identities[Identifier("cust_no", "C1").key] == person


def test_links_are_persisted_before_the_load_runs(service: IdentityService, store: MemoryIdentityStore) -> None:
    with service.attribute([record("m1", anonymous_id="a1", user_id="U1")]):
        assert Identifier("user_id", "U1").key in store.identities


def test_attributing_the_same_batch_again_changes_nothing(service: IdentityService, store: MemoryIdentityStore) -> None:
    records = [record("m1", anonymous_id="a1", user_id="U1"), record("m2", user_id="U2", anonymous_id="a2")]
    first = attribute(service, records)
    writes = store.persisted
    assert attribute(service, records) == first
    assert store.persisted == writes


class FlakyStore(MemoryIdentityStore):
    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def persist(self, changes: IdentityChanges) -> int:
        if changes and self.failures:
            self.failures -= 1
            raise OSError("the disk went away")
        return super().persist(changes)


def test_a_failed_persist_keeps_the_changes_for_the_next_attempt() -> None:
    store = FlakyStore()
    service = IdentityService(store, CIPHER, FrozenClock())
    batch = [record("m1", anonymous_id="a1", user_id="U1")]
    with pytest.raises(OSError, match="went away"), service.attribute(batch):
        pytest.fail("the load must not run when the links were not persisted")
    attribution = attribute(service, batch)  # the loader retries the same batch
    assert store.identities == {
        Identifier("user_id", "U1").key: attribution.one_ids[0],
        Identifier("anonymous_id", "a1").key: attribution.one_ids[0],
    }


def test_a_refused_merge_is_a_conflict_error_and_is_recorded(
    service: IdentityService, store: MemoryIdentityStore
) -> None:
    service.link([Identifier("cust_no", "C1"), Identifier("user_id", "U1")], reason="import", source="t")
    service.link([Identifier("cust_no", "C2")], reason="import", source="t")
    with pytest.raises(MarketloopError) as refused:
        service.merge([Identifier("cust_no", "C2"), Identifier("user_id", "U1")], reason="api", source="t")
    assert refused.value.kind is ErrorKind.CONFLICT
    assert "cust_no" in refused.value.detail
    assert len(store.conflict_log) == 1
    assert service.resolve(Identifier("user_id", "U1")) != service.resolve(Identifier("cust_no", "C2"))


def test_show_person_and_history(service: IdentityService) -> None:
    phone = service.identifier("phone", "+86 138 0013 8000")
    outcome = service.merge([Identifier("user_id", "U1"), phone], reason="api", source="t")
    person = service.show(service.identifier("phone", "13800138000"))
    assert person.one_id == outcome.one_id
    assert set(person.identifiers) == {Identifier("user_id", "U1"), phone}
    assert "phone" in person.protected_types
    assert service.hashed("phone", phone.value.upper()) == phone
    with pytest.raises(MarketloopError):
        service.hashed("user_id", "abc")
    with pytest.raises(MarketloopError) as missing:
        service.show(Identifier("user_id", "nobody"))
    assert missing.value.kind is ErrorKind.NOT_FOUND
    assert service.history(person.one_id) == ([], [])


def test_the_graph_is_loaded_from_the_store_at_start(store: MemoryIdentityStore) -> None:
    first = IdentityService(store, CIPHER, FrozenClock())
    one_id = first.link([Identifier("user_id", "U1"), Identifier("anonymous_id", "a1")], reason="t", source="t").one_id
    again = IdentityService(store, CIPHER, FrozenClock())
    assert again.resolve(Identifier("anonymous_id", "a1")) == one_id


def test_an_unmerge_waits_until_the_batch_being_loaded_is_committed(service: IdentityService) -> None:
    person = service.link(
        [Identifier("user_id", "U1"), Identifier("anonymous_id", "a1")], reason="t", source="t"
    ).one_id
    assert person is not None
    done = threading.Event()

    def unmerge() -> None:
        service.unmerge(person, [Identifier("anonymous_id", "a1")], actor="admin")
        done.set()

    with service.attribute([record("m1", anonymous_id="a1")]) as attribution:
        worker = threading.Thread(target=unmerge)
        worker.start()
        assert not done.wait(0.2), "the unmerge ran while the batch's OneIDs were being loaded"
        assert attribution.one_ids == [person]
    worker.join(timeout=10)
    assert done.is_set()
    assert service.resolve(Identifier("anonymous_id", "a1")) != person


def test_link_many_links_an_import_batch_and_persists_it_once(
    service: IdentityService, store: MemoryIdentityStore
) -> None:
    batch = [
        [Identifier("cust_no", "C1"), service.identifier("phone", "13800138000")],
        [Identifier("cust_no", "C2"), service.identifier("phone", "13800138000")],  # a shared family phone
        [Identifier("cust_no", "C3")],
    ]
    outcomes = service.link_many(batch, reason="import", source="customers.csv")
    assert store.persisted == 1
    assert [bool(o.conflicts) for o in outcomes] == [False, True, False]
    assert service.resolve(batch[0][1]) == outcomes[0].one_id, "the phone stays with the first customer"
    assert len({o.one_id for o in outcomes}) == 3


def test_sensors_id_mapping_identities_are_identifiers(service: IdentityService) -> None:
    payload = msgspec.json.encode(
        {
            "type": "track",
            "event": "$AppStart",
            "distinct_id": "U7",
            "login_id": "U7",
            "anonymous_id": "anon-7",
            "identities": {
                "$identity_login_id": "U7",
                "$identity_mobile": "13800138007",
                "$identity_android_id": "andr-7",
                "$identity_mp_unionid": "union-7",
                "$identity_email": 42,  # not text: skipped
            },
            "time": 1_790_000_000_000,
            "properties": {},
        }
    )
    inbound = decode_sensors_query({"data": base64.b64encode(payload).decode()}, received_at=datetime.now(UTC))
    (decoded,) = inbound.events
    found = set(service.identifiers_of(decoded))
    assert found == {
        Identifier("user_id", "U7"),
        Identifier("anonymous_id", "anon-7"),
        service.identifier("phone", "13800138007"),
        Identifier("device_id", "andr-7"),
        Identifier("wechat_unionid", "union-7"),
    }
