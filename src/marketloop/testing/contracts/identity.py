"""The contract of the `IdentityStore` port, as tests that every adapter must pass.

A test module runs the suite by importing the tests and providing an
`identity_store` fixture that returns an empty store of the adapter under
test (see `tests/contract/test_identity_store.py`):

    from marketloop.testing.contracts.identity import *  # noqa: F403
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from marketloop.core.identities import ConflictReason, Identifier, MergeRecord, UnmergeRecord
from marketloop.core.identity_graph import IdentityGraph
from marketloop.ports.identity import IdentityStore

__all__ = [
    "test_a_new_store_is_empty",
    "test_conflicts_are_kept_once_newest_first_and_filtered_by_oneid",
    "test_history_lists_merges_and_unmerges_of_the_oneids_oldest_first",
    "test_nothing_to_persist_changes_nothing",
    "test_persisted_changes_load_back_into_the_same_graph",
]

T0 = datetime(2026, 1, 1, tzinfo=UTC)
C1, C2 = Identifier("cust_no", "C1"), Identifier("cust_no", "C2")
U1 = Identifier("user_id", "U1")
A1, A2, A3 = Identifier("anonymous_id", "a1"), Identifier("anonymous_id", "a2"), Identifier("anonymous_id", "a3")
PHONE = Identifier("phone", "9" * 64)  # protected types arrive as keyed hashes


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _persist(graph: IdentityGraph, store: IdentityStore) -> None:
    store.persist(graph.changes())
    graph.clear_changes()


def scenario(store: IdentityStore) -> tuple[IdentityGraph, dict[str, str]]:
    """Creates, merges, a conflict, an unmerge into a new OneID and one that revives; persisted step by step."""
    graph = IdentityGraph()
    names: dict[str, str] = {}

    def link(name: str, *identifiers: Identifier, minutes: int) -> None:
        outcome = graph.link(identifiers, at=_at(minutes), reason="identify", source=f"test/{name}")
        names[name] = outcome.one_id or ""
        _persist(graph, store)

    link("customer", C1, U1, PHONE, minutes=0)
    link("visitor", A1, A2, minutes=1)
    link("merge", U1, A1, minutes=2)
    link("other", C2, A3, minutes=3)
    link("conflict", C1, A3, minutes=4)
    names["split"] = graph.unmerge(names["customer"], [A1, A2], at=_at(5), actor="admin").one_id
    _persist(graph, store)
    names["new"] = graph.unmerge(names["customer"], [PHONE], at=_at(6), actor="admin").one_id
    _persist(graph, store)
    return graph, names


def test_a_new_store_is_empty(identity_store: IdentityStore) -> None:
    snapshot = identity_store.load()
    assert list(snapshot.identity_keys) == []
    assert list(snapshot.origins) == []
    assert list(snapshot.redirects) == []
    assert identity_store.history(["x"], limit=10) == []
    assert identity_store.conflicts(limit=10) == []


def test_nothing_to_persist_changes_nothing(identity_store: IdentityStore) -> None:
    assert identity_store.persist(IdentityGraph().changes()) == 0
    assert list(identity_store.load().identity_keys) == []


def test_persisted_changes_load_back_into_the_same_graph(identity_store: IdentityStore) -> None:
    graph, names = scenario(identity_store)
    assert names["split"] == names["visitor"], "the scenario's first unmerge revives the visitor"
    reloaded = IdentityGraph.from_snapshot(identity_store.load())
    assert reloaded.snapshot() == graph.snapshot()
    assert reloaded.link([U1, A2], at=_at(9), reason="track", source="t").conflicts, "separations survive a reload"


def test_history_lists_merges_and_unmerges_of_the_oneids_oldest_first(identity_store: IdentityStore) -> None:
    _, names = scenario(identity_store)
    history = identity_store.history([names["customer"]], limit=100)
    assert [type(r) for r in history] == [MergeRecord, UnmergeRecord, UnmergeRecord]
    merge, revive, split = history
    assert isinstance(merge, MergeRecord)
    assert (merge.survivor, merge.absorbed, merge.at, merge.source) == (
        names["customer"],
        names["visitor"],
        _at(2),
        "test/merge",
    )
    assert set(merge.identifiers) == {U1, A1}
    assert isinstance(revive, UnmergeRecord)
    assert (revive.to_one_id, revive.revived, revive.actor) == (names["visitor"], True, "admin")
    assert isinstance(split, UnmergeRecord)
    assert (split.identifiers, split.revived) == ((PHONE,), False)
    assert identity_store.history([names["customer"]], limit=1) == [merge]
    assert identity_store.history([names["other"]], limit=100) == []


def test_conflicts_are_kept_once_newest_first_and_filtered_by_oneid(identity_store: IdentityStore) -> None:
    graph, names = scenario(identity_store)
    graph.link([C1, A3], at=_at(7), reason="identify", source="again")  # the same refusal again: not kept twice
    graph.link([C1, C2], at=_at(8), reason="import", source="file")
    _persist(graph, identity_store)
    found = identity_store.conflicts(limit=10)
    assert [c.reason for c in found] == [ConflictReason.INPUT_CONTRADICTS, ConflictReason.UNIQUE_TYPE]
    assert found[1].source == "test/conflict"
    assert found[1].values == ("C1", "C2")
    assert set(found[1].identifiers) == {C1, A3}
    assert identity_store.conflicts([names["other"]], limit=10) == found
    assert identity_store.conflicts([names["visitor"], "unrelated"], limit=10) == []
    assert len(identity_store.conflicts(limit=1)) == 1
