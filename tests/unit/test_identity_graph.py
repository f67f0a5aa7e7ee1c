"""The OneID graph's rules, one test each: creation, merging, unique types, the older survives, unmerge."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.identities import (
    ConflictReason,
    Identifier,
    IdentifierType,
    IdentifierTypes,
    MergeRecord,
    Normaliser,
    Protection,
    UnmergeRecord,
)
from marketloop.core.identity_graph import ONE_ID_NAMESPACE, IdentityGraph, one_id_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)
C1, C2 = Identifier("cust_no", "C1"), Identifier("cust_no", "C2")
U1, U2 = Identifier("user_id", "U1"), Identifier("user_id", "U2")
A1, A2, A3 = Identifier("anonymous_id", "a1"), Identifier("anonymous_id", "a2"), Identifier("anonymous_id", "a3")
D1 = Identifier("device_id", "d1")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def link(graph: IdentityGraph, *identifiers: Identifier, minutes: int = 0, strict: bool = False) -> str | None:
    return graph.link(identifiers, at=at(minutes), reason="identify", source="test", strict=strict).one_id


def members(graph: IdentityGraph, one_id: str | None) -> set[Identifier]:
    assert one_id is not None
    return set(graph.members(one_id))


def test_a_new_identifier_gets_a_oneid_derived_from_it() -> None:
    graph = IdentityGraph()
    one_id = link(graph, A1)
    assert one_id == str(uuid.uuid5(ONE_ID_NAMESPACE, "anonymous_id:a1"))
    assert one_id_for("cust_no:C0001") == str(uuid.uuid5(ONE_ID_NAMESPACE, "cust_no:C0001"))
    assert graph.resolve(A1) == one_id
    assert graph.resolve(A2) is None


def test_the_oneid_is_issued_for_the_highest_priority_identifier() -> None:
    graph = IdentityGraph()
    outcome = graph.link([A1, U1, C1], at=T0, reason="identify", source="test")
    origin = graph.origin(outcome.one_id or "")
    assert origin is not None
    assert origin.creator == C1
    assert set(outcome.attached) == {A1, U1, C1}


def test_linking_is_idempotent_and_changes_nothing_the_second_time() -> None:
    graph = IdentityGraph()
    first = link(graph, U1, A1)
    graph.clear_changes()
    again = graph.link([A1, U1], at=at(5), reason="track", source="test")
    assert again.one_id == first
    assert not graph.changes()


def test_a_merge_keeps_the_older_oneid_and_redirects_the_younger() -> None:
    graph = IdentityGraph()
    anonymous = link(graph, A1, minutes=0)
    user = link(graph, U1, C1, minutes=10)
    assert anonymous != user
    outcome = graph.link([U1, A1], at=at(20), reason="identify", source="test")
    assert outcome.one_id == anonymous, "the older OneID survives, even though the user id has the higher priority"
    assert outcome.absorbed == (user,)
    assert graph.redirects == {user: anonymous}
    assert graph.canonical(user) == anonymous
    assert members(graph, anonymous) == {A1, U1, C1}
    record = graph.changes().history[0]
    assert isinstance(record, MergeRecord)
    assert (record.survivor, record.absorbed, record.reason) == (anonymous, user, "identify")


def test_equal_ages_are_broken_by_the_smaller_oneid() -> None:
    graph = IdentityGraph()
    first, second = link(graph, A1, minutes=0), link(graph, A2, minutes=0)
    assert first
    assert second
    survivor = link(graph, A1, A2, minutes=1)
    assert survivor == min(first, second)


def test_redirects_are_flattened_to_one_hop() -> None:
    graph = IdentityGraph()
    oldest, middle, young = link(graph, A1, minutes=0), link(graph, A2, minutes=1), link(graph, A3, minutes=2)
    link(graph, A2, A3, minutes=3)
    link(graph, A1, A2, minutes=4)
    assert graph.redirects == {middle: oldest, young: oldest}


def test_two_customer_numbers_never_merge_and_the_conflict_is_recorded_with_its_reason() -> None:
    graph = IdentityGraph()
    first = link(graph, C1, U1)
    second = link(graph, C2, A1)
    outcome = graph.link([U1, A1], at=at(5), reason="alias", source="test/m9")
    assert graph.resolve(U1) == first
    assert graph.resolve(A1) == second
    assert not outcome.absorbed
    (conflict,) = outcome.conflicts
    assert conflict.reason is ConflictReason.UNIQUE_TYPE
    assert (conflict.id_type, conflict.values) == ("cust_no", ("C1", "C2"))
    assert conflict.one_ids == tuple(sorted((first or "", second or "")))
    assert conflict.source == "test/m9"
    assert graph.changes().conflicts == (conflict,)


def test_a_link_holding_two_values_of_a_unique_type_changes_nothing() -> None:
    graph = IdentityGraph()
    outcome = graph.link([C1, C2, A1], at=T0, reason="import", source="test")
    assert outcome.one_id is None
    assert [c.reason for c in outcome.conflicts] == [ConflictReason.INPUT_CONTRADICTS]
    assert outcome.conflicts[0].values == ("C1", "C2")
    assert graph.identifier_count() == 0


def test_non_conflicting_identifiers_join_the_anchor_and_the_conflicting_oneid_stays_apart() -> None:
    # A shared device: it belongs to the first customer; the second logs in on it.
    graph = IdentityGraph()
    wife = link(graph, U1, D1, minutes=0)
    outcome = graph.link([U2, D1, A1], at=at(5), reason="identify", source="test")
    husband = outcome.one_id
    assert husband != wife
    assert graph.resolve(D1) == wife, "the device stays where it was"
    assert graph.resolve(A1) == husband, "the new anonymous id joins the anchor (the user id)"
    assert members(graph, husband) == {U2, A1}
    assert [c.reason for c in outcome.conflicts] == [ConflictReason.UNIQUE_TYPE]


def test_a_refused_new_unique_identifier_stays_unknown() -> None:
    graph = IdentityGraph()
    person = link(graph, C1, U1)
    outcome = graph.link([C1, U2, A1], at=at(1), reason="identify", source="test")
    assert outcome.one_id == person
    assert graph.resolve(U2) is None
    assert graph.resolve(A1) == person
    assert outcome.conflicts[0].values == ("U1", "U2")


def test_a_strict_link_with_a_conflict_changes_nothing_but_records_it() -> None:
    graph = IdentityGraph()
    link(graph, C1, U1)
    link(graph, C2)
    graph.clear_changes()
    outcome = graph.link([C2, U1, A1], at=at(1), reason="api", source="test", strict=True)
    assert outcome.conflicts
    assert graph.resolve(A1) is None
    changes = graph.changes()
    assert changes.conflicts
    assert not changes.identities
    assert not changes.history


def test_a_repeated_conflict_is_recorded_once() -> None:
    graph = IdentityGraph()
    link(graph, U1, D1)
    link(graph, U2)
    for minute in range(3):
        assert graph.link([U2, D1], at=at(minute), reason="track", source="test").conflicts
    assert len(graph.changes().conflicts) == 1


def test_unmerge_splits_identifiers_off_into_a_new_oneid_and_keeps_them_apart() -> None:
    graph = IdentityGraph()
    person = link(graph, C1, U1, A1, D1)
    assert person
    outcome = graph.unmerge(person, [A1, D1], at=at(5), actor="admin")
    assert outcome.from_one_id == person
    assert outcome.one_id != person
    assert not outcome.revived
    assert members(graph, person) == {C1, U1}
    assert members(graph, outcome.one_id) == {A1, D1}
    again = graph.link([U1, A1], at=at(6), reason="track", source="test")
    assert [c.reason for c in again.conflicts] == [ConflictReason.SEPARATED]
    assert graph.resolve(A1) == outcome.one_id, "an unmerge is not undone by the next event"
    changes = graph.changes()
    assert isinstance(changes.history[-1], UnmergeRecord)
    (reattribution,) = changes.reattributions
    assert (reattribution.to_one_id, reattribution.rest_one_id, set(reattribution.moved)) == (
        outcome.one_id,
        person,
        {A1, D1},
    )


def test_unmerging_a_merged_away_oneids_identifiers_brings_it_back() -> None:
    graph = IdentityGraph()
    customer = link(graph, C1, U1, minutes=0)
    stranger = link(graph, A1, A2, minutes=5)
    link(graph, U1, A1, minutes=10)  # the wrong merge
    assert customer
    assert stranger
    assert graph.canonical(stranger) == customer
    outcome = graph.unmerge(customer, [A1, A2], at=at(20), actor="admin")
    assert outcome.one_id == stranger
    assert outcome.revived
    assert stranger not in graph.redirects
    assert members(graph, stranger) == {A1, A2}
    assert graph.changes().removed_redirects == (stranger,)


def test_a_separation_follows_merges_of_either_side() -> None:
    graph = IdentityGraph()
    person = link(graph, C1, A1)
    assert person
    split = graph.unmerge(person, [A1], at=at(1), actor="admin").one_id
    link(graph, A1, A2, minutes=2)  # the split side grows
    outcome = graph.link([C1, A2], at=at(3), reason="track", source="test")
    assert [c.reason for c in outcome.conflicts] == [ConflictReason.SEPARATED]
    assert graph.resolve(A2) == split


@pytest.mark.parametrize(
    ("identifiers", "code"),
    [([], "identity.empty-unmerge"), ([C2], "identity.not-a-member"), ([C1, A1], "identity.unmerge-everything")],
)
def test_unmerge_refuses_what_it_cannot_do(identifiers: list[Identifier], code: str) -> None:
    graph = IdentityGraph()
    person = link(graph, C1, A1)
    with pytest.raises(MarketloopError) as refused:
        graph.unmerge(person or "", identifiers, at=T0, actor="admin")
    assert refused.value.code == code


def test_unmerge_of_an_unknown_oneid_is_not_found() -> None:
    with pytest.raises(MarketloopError) as refused:
        IdentityGraph().unmerge("nope", [A1], at=T0, actor="admin")
    assert refused.value.kind is ErrorKind.NOT_FOUND


def test_unmerge_accepts_a_merged_away_oneid_and_splits_its_survivor() -> None:
    graph = IdentityGraph()
    survivor = link(graph, A1, minutes=0)
    absorbed = link(graph, U1, minutes=1)
    link(graph, A1, U1, A2, minutes=2)
    outcome = graph.unmerge(absorbed or "", [A2], at=at(3), actor="admin")
    assert outcome.from_one_id == survivor


def test_a_snapshot_round_trip_gives_the_same_graph() -> None:
    graph = IdentityGraph()
    person = link(graph, C1, U1, A1)
    link(graph, C2, A2)
    graph.unmerge(person or "", [A1], at=at(3), actor="admin")
    assert IdentityGraph.from_snapshot(graph.snapshot()).snapshot() == graph.snapshot()


def test_custom_types_take_part_with_their_own_priority_and_uniqueness() -> None:
    loyalty = IdentifierType(name="loyalty_no", priority=95, unique=True)
    types = IdentifierTypes([*IdentifierTypes(), loyalty])
    graph = IdentityGraph(types)
    one_id = graph.link([U1, Identifier("loyalty_no", "L1")], at=T0, reason="import", source="test").one_id
    origin = graph.origin(one_id or "")
    assert origin is not None
    assert origin.creator == Identifier("loyalty_no", "L1")
    with pytest.raises(MarketloopError):
        graph.link([Identifier("membership", "x")], at=T0, reason="import", source="test")


@pytest.mark.parametrize(
    "raw", ["13800138000", "+86 138 0013 8000", "0086-138-0013-8000", "86 13800138000", "(138)0013-8000"]
)
def test_every_spelling_of_a_phone_normalises_to_one_value(raw: str) -> None:
    assert IdentifierTypes().normalise("phone", raw) == "13800138000"


def test_normalisation_per_type() -> None:
    types = IdentifierTypes()
    assert types.normalise("id_card", "11010519491231002x") == "11010519491231002X"
    assert types.normalise("id_card", "110105194912310021") is None, "wrong check digit"
    assert types.normalise("email", " Li.Wei@Example.COM ") == "li.wei@example.com"
    assert types.normalise("wechat_openid", "wx123:oAbC") == "wx123:oAbC"
    assert types.normalise("wechat_openid", "oAbC") is None, "an openid needs its app id"
    assert types.normalise("cust_no", "  C0001 ") == "C0001"
    assert types.normalise("cust_no", "   ") is None
    assert types.normalise("user_id", "x" * 300) is None


def test_type_definitions_are_checked() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        IdentifierTypes([*IdentifierTypes(), IdentifierType(name="phone", priority=1, unique=False)])
    with pytest.raises(ValueError, match="must match"):
        IdentifierTypes([IdentifierType(name="Bad Name", priority=1, unique=False)])
    phone = IdentifierTypes().get("phone")
    assert phone.protection is Protection.ENCRYPT_AND_HASH
    assert phone.normaliser is Normaliser.PHONE
