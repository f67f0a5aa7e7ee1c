"""The graph's shortcut for common links (all identifiers new, or new ones joining one known OneID) decides
exactly as the general path through `identity_rules.plan` does: same outcomes, same journal, same graph.

A reference graph whose shortcut always declines runs the same random links and unmerges; after every
operation both must agree on the outcome (or the error), on the changes to persist, and on the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from marketloop.core.errors import MarketloopError
from marketloop.core.identities import Identifier, IdentityChanges, LinkOutcome, UnmergeOutcome
from marketloop.core.identity_graph import IdentityGraph
from marketloop.core.identity_rules import Link as RulesLink

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# Two unique types with few values (so links conflict), non-unique ones with more (so they join and merge).
UNIVERSE = (
    *(Identifier("cust_no", f"C{n}") for n in range(3)),
    *(Identifier("user_id", f"U{n}") for n in range(2)),
    *(Identifier("phone", f"p{n}") for n in range(2)),
    *(Identifier("device_id", f"D{n}") for n in range(3)),
    *(Identifier("anonymous_id", f"a{n}") for n in range(6)),
)


class RulesOnlyGraph(IdentityGraph):
    """The reference: every link that is not a no-op goes through `rules.plan` and `_apply`."""

    def _join_new(self, owners: set[str | None], keys: list[str], ctx: RulesLink) -> LinkOutcome | None:
        return None


@dataclass(frozen=True)
class Link:
    identifiers: tuple[Identifier, ...]
    minutes: int
    strict: bool


@dataclass(frozen=True)
class Unmerge:
    person: int
    mask: int
    minutes: int


links = st.builds(
    Link,
    identifiers=st.lists(st.sampled_from(UNIVERSE), min_size=1, max_size=4).map(tuple),
    minutes=st.integers(0, 50),
    strict=st.booleans(),
)
unmerges = st.builds(Unmerge, person=st.integers(0, 20), mask=st.integers(1, 255), minutes=st.integers(0, 50))
operations = st.lists(st.one_of(links, links, links, links, links, unmerges), max_size=40)

Result = LinkOutcome | UnmergeOutcome | str


def apply(graph: IdentityGraph, operation: Link | Unmerge) -> Result:
    at = T0 + timedelta(minutes=operation.minutes)
    try:
        if isinstance(operation, Link):
            return graph.link(operation.identifiers, at=at, reason="test", source="s", strict=operation.strict)
        live = sorted(graph.live_one_ids())
        if not live:
            return "nobody"
        one_id = live[operation.person % len(live)]
        moving = [m for i, m in enumerate(graph.members(one_id)) if operation.mask >> i & 1]
        return graph.unmerge(one_id, moving, at=at, actor="admin")
    except MarketloopError as error:
        return error.code


def comparable(changes: IdentityChanges) -> tuple[object, ...]:
    """The changes, with the identity rows (from a set of keys) in a fixed order."""
    return (
        sorted(changes.identities),
        changes.one_ids,
        changes.redirects,
        changes.removed_redirects,
        changes.history,
        changes.conflicts,
        changes.reattributions,
    )


@settings(max_examples=300, deadline=None)
@given(operations, st.integers(1, 5))
def test_the_shortcut_decides_every_link_as_the_rules_do(ops: list[Link | Unmerge], persist_every: int) -> None:
    fast, reference = IdentityGraph(), RulesOnlyGraph()
    for n, operation in enumerate(ops, start=1):
        assert apply(fast, operation) == apply(reference, operation), operation
        if n % persist_every == 0:
            assert comparable(fast.changes()) == comparable(reference.changes())
            fast.clear_changes()
            reference.clear_changes()
        assert fast.snapshot() == reference.snapshot()
    assert comparable(fast.changes()) == comparable(reference.changes())


def test_the_shortcut_takes_first_visits_and_new_devices_of_a_known_person() -> None:
    """The two common cases: a first visit issues a OneID for its anchor; a new device joins the known person."""
    graph = IdentityGraph()
    first = graph.link(
        [Identifier("device_id", "D1"), Identifier("user_id", "U1")], at=T0, reason="login", source="s/1"
    )
    assert first.created == first.one_id
    assert first.attached == (Identifier("user_id", "U1"), Identifier("device_id", "D1"))
    origin = graph.origin(first.one_id or "")
    assert origin is not None
    assert origin.creator == Identifier("user_id", "U1")
    second = graph.link(
        [Identifier("user_id", "U1"), Identifier("device_id", "D2")], at=T0, reason="login", source="s/2"
    )
    assert (second.one_id, second.created, second.absorbed) == (first.one_id, None, ())
    assert second.attached == (Identifier("device_id", "D2"),)
    refused = graph.link(
        [Identifier("user_id", "U2"), Identifier("device_id", "D2")], at=T0, reason="login", source="s/3"
    )
    # D2's person holds U1, so it is refused; U2 alone gets a OneID of its own (the rules' general path)
    assert refused.created == refused.one_id != first.one_id
    assert refused.attached == (Identifier("user_id", "U2"),)
    assert [c.reason.value for c in refused.conflicts] == ["unique_type"]
    assert graph.resolve(Identifier("device_id", "D2")) == first.one_id
    rows = {row.identifier: row for row in graph.changes().identities}
    assert (rows[Identifier("device_id", "D2")].first_seen, rows[Identifier("device_id", "D2")].source) == (T0, "s/2")
