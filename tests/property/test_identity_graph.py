"""Property tests of the OneID graph: random link / unmerge sequences keep every invariant.

Peer CDPs are known for merges that duplicate or lose profiles; these tests
hold ours to: each identifier has exactly one live OneID, members and the map
agree, no OneID holds two values of a unique type, redirects end at a live
OneID in one hop (so no cycles), no OneID or identifier ever goes missing,
the store round trip loses nothing, and - for link-only sequences without
conflicts - the final partition is the connected components of the links,
whatever their order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketloop.core.errors import MarketloopError
from marketloop.core.identities import Identifier
from marketloop.core.identity_graph import IdentityGraph
from marketloop.testing.identity import MemoryIdentityStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# Few unique values and more non-unique ones, so that random links merge often and conflict sometimes.
UNIVERSE = (
    *(Identifier("cust_no", f"C{n}") for n in range(2)),
    *(Identifier("user_id", f"U{n}") for n in range(2)),
    *(Identifier("device_id", f"D{n}") for n in range(3)),
    *(Identifier("anonymous_id", f"a{n}") for n in range(5)),
)


@dataclass(frozen=True)
class Link:
    identifiers: tuple[Identifier, ...]
    minutes: int
    strict: bool


@dataclass(frozen=True)
class Unmerge:
    person: int  # index into the sorted live OneIDs
    mask: int  # which members move (bit i = i-th member)
    minutes: int


links = st.builds(
    Link,
    identifiers=st.lists(st.sampled_from(UNIVERSE), min_size=1, max_size=3).map(tuple),
    minutes=st.integers(0, 50),
    strict=st.booleans(),
)
unmerges = st.builds(Unmerge, person=st.integers(0, 20), mask=st.integers(1, 255), minutes=st.integers(0, 50))
operations = st.lists(st.one_of(links, links, links, links, unmerges), max_size=40)


class Run:
    """Applies operations to a graph, persisting each change set to an in-memory store."""

    def __init__(self) -> None:
        self.graph = IdentityGraph()
        self.store = MemoryIdentityStore()
        self.issued: set[str] = set()
        self.known: set[Identifier] = set()

    def apply(self, operation: Link | Unmerge) -> None:
        if isinstance(operation, Link):
            at = T0 + timedelta(minutes=operation.minutes)
            outcome = self.graph.link(
                operation.identifiers, at=at, reason="test", source="property", strict=operation.strict
            )
            self.issued.update(o for o in (outcome.one_id, outcome.created, *outcome.absorbed) if o)
        else:
            self._unmerge(operation)
        self.store.persist(self.graph.changes())
        self.graph.clear_changes()

    def _unmerge(self, operation: Unmerge) -> None:
        live = sorted(self.graph.live_one_ids())
        if not live:
            return
        one_id = live[operation.person % len(live)]
        members = self.graph.members(one_id)
        moving = [m for i, m in enumerate(members) if operation.mask >> i & 1]
        at = T0 + timedelta(minutes=operation.minutes)
        if len(moving) in (0, len(members)):
            with pytest.raises(MarketloopError) as refused:
                self.graph.unmerge(one_id, moving, at=at, actor="admin")
            assert refused.value.code == ("identity.empty-unmerge" if not moving else "identity.unmerge-everything")
            return
        self.issued.add(self.graph.unmerge(one_id, moving, at=at, actor="admin").one_id)

    def check(self) -> None:
        check_invariants(self.graph)
        now_known = {i for i in UNIVERSE if self.graph.resolve(i) is not None}
        assert self.known <= now_known, "an identifier was lost"
        self.known = now_known
        for one_id in self.issued:
            assert self.graph.canonical(one_id) is not None, f"OneID {one_id} was lost"
        reloaded = IdentityGraph.from_snapshot(self.store.load())
        assert reloaded.snapshot() == self.graph.snapshot(), "the store round trip changed the graph"


def check_invariants(graph: IdentityGraph) -> None:
    live = set(graph.live_one_ids())
    seen: set[Identifier] = set()
    for one_id in live:
        members = graph.members(one_id)
        assert members, f"live OneID {one_id} has no identifiers"
        assert len(set(members)) == len(members)
        assert not seen & set(members), "an identifier is in two OneIDs"
        seen.update(members)
        assert all(graph.resolve(m) == one_id for m in members), "the map and the members disagree"
        unique_types = [m.type for m in members if graph.types.get(m.type).unique]
        assert len(unique_types) == len(set(unique_types)), f"{one_id} holds two values of a unique type"
        assert graph.origin(one_id) is not None
    assert len(seen) == graph.identifier_count(), "the map holds identifiers no OneID lists"
    for absorbed, survivor in graph.redirects.items():
        assert absorbed not in live, "a merged-away OneID is still live"
        assert survivor in live, "a redirect does not end at a live OneID in one hop"
        assert absorbed in graph.absorbed(survivor)
        assert graph.origin(absorbed) is not None


@settings(max_examples=200, deadline=None)
@given(operations)
def test_random_links_and_unmerges_keep_every_invariant(ops: list[Link | Unmerge]) -> None:
    run = Run()
    for operation in ops:
        run.apply(operation)
        run.check()


@settings(max_examples=50, deadline=None)
@given(operations)
def test_replaying_the_same_operations_gives_the_same_graph_and_oneids(ops: list[Link | Unmerge]) -> None:
    first, second = Run(), Run()
    for operation in ops:
        first.apply(operation)
        second.apply(operation)
    assert first.graph.snapshot() == second.graph.snapshot()


# -- order independence --------------------------------------------------------

PEOPLE = 4
# Each person owns one customer number and one user id at most, so no link of one person's identifiers conflicts.
OWNED = {
    **{Identifier("cust_no", f"C{p}"): p for p in range(PEOPLE)},
    **{Identifier("user_id", f"U{p}"): p for p in range(PEOPLE)},
    **{Identifier("device_id", f"D{p}"): p for p in range(PEOPLE)},
    **{Identifier("anonymous_id", f"a{p}{n}"): p for p in range(PEOPLE) for n in range(3)},
}


@st.composite
def conflict_free_links(draw: st.DrawFn) -> list[tuple[tuple[Identifier, ...], int]]:
    """Links that each stay within one person's identifiers, with a time each."""
    count = draw(st.integers(1, 25))
    result = []
    for _ in range(count):
        person = draw(st.integers(0, PEOPLE - 1))
        own = [i for i, p in OWNED.items() if p == person]
        chosen = draw(st.lists(st.sampled_from(own), min_size=1, max_size=4).map(tuple))
        result.append((chosen, draw(st.integers(0, 100))))
    return result


def components(sets: list[tuple[Identifier, ...]]) -> set[frozenset[Identifier]]:
    parent: dict[Identifier, Identifier] = {}

    def find(x: Identifier) -> Identifier:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for linked in sets:
        for other in linked[1:]:
            parent[find(other)] = find(linked[0])
        find(linked[0])
    groups: dict[Identifier, set[Identifier]] = {}
    for x in parent:
        groups.setdefault(find(x), set()).add(x)
    return {frozenset(g) for g in groups.values()}


def partition(graph: IdentityGraph) -> set[frozenset[Identifier]]:
    return {frozenset(graph.members(o)) for o in graph.live_one_ids()}


@settings(max_examples=200, deadline=None)
@given(conflict_free_links(), st.randoms(use_true_random=False))
def test_the_partition_of_conflict_free_links_does_not_depend_on_their_order(
    sequence: list[tuple[tuple[Identifier, ...], int]], random: object
) -> None:
    shuffled = list(sequence)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    graphs = []
    for order in (sequence, shuffled):
        graph = IdentityGraph()
        for identifiers, minutes in order:
            outcome = graph.link(identifiers, at=T0 + timedelta(minutes=minutes), reason="test", source="order")
            assert not outcome.conflicts
        check_invariants(graph)
        graphs.append(graph)
    expected = components([identifiers for identifiers, _ in sequence])
    assert partition(graphs[0]) == partition(graphs[1]) == expected
