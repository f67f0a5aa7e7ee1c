"""OneID's merge rules: which parts of a link may join one OneID, and why the others are refused.

Owns the decision, not the state: `plan` reads the graph through `GraphView`
and returns what to merge and attach; `IdentityGraph` applies it. Pure.

`link(identifiers)` - the rule, exactly:

1. The identifiers are ordered by priority (ties: type name, then value);
   the first is the *anchor*. A link's event belongs to the anchor's OneID.
2. If the link itself holds two values of one unique type (two customer
   numbers), nothing changes; a `Conflict` (input_contradicts) is recorded.
3. Otherwise each identifier in that order brings a *candidate*: its OneID
   when it has one (each OneID once), else itself. The anchor's candidate
   is accepted. Every later candidate is accepted when it adds no second
   value of a unique type to what is accepted so far and no accepted OneID
   was separated from it by an unmerge; else it is refused and a `Conflict`
   (unique_type / separated) records why. Refused OneIDs stay as they were;
   refused new identifiers stay unknown (they are in the conflict record).
4. The accepted OneIDs merge into the oldest of them; when none was
   accepted, a OneID is issued for the anchor. The accepted new
   identifiers join it.
5. With `strict=True` (a deliberate merge from the API) any conflict refuses
   the whole link: only the conflicts are recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from marketloop.core.identities import KEY_SEPARATOR, Conflict, ConflictReason, Identifier


class GraphView(Protocol):
    """What the rules read of the graph."""

    @property
    def unique_types(self) -> frozenset[str]: ...

    def resolve_key(self, key: str) -> str | None: ...

    def uniques_of(self, one_id: str) -> dict[str, str]: ...

    def separated(self, one_id: str, accepted: Sequence[str]) -> str | None: ...


@dataclass(kw_only=True, slots=True)
class Link:
    """One link being decided: when, why, from where, and its identifiers by key, highest priority first.

    Not frozen (a frozen dataclass is slower to build, and one is built per link); nothing changes it.
    """

    at: datetime
    reason: str
    source: str
    given: dict[str, Identifier]

    @property
    def identifiers(self) -> tuple[Identifier, ...]:
        return tuple(self.given.values())


@dataclass
class Plan:
    """What a link may do: OneIDs to merge, new identifiers to attach, and what was refused."""

    accepted: list[str] = field(default_factory=list)  # OneIDs, in the order considered
    new: list[str] = field(default_factory=list)  # unknown identifier keys
    uniques: dict[str, str] = field(default_factory=dict)  # unique type -> value, over everything accepted
    seen: set[str] = field(default_factory=set)
    conflicts: list[Conflict] = field(default_factory=list)


def split_key(key: str) -> tuple[str, str]:
    type_, _, value = key.partition(KEY_SEPARATOR)
    return type_, value


def contradiction(view: GraphView, keys: list[str], ctx: Link) -> Conflict | None:
    """Rule 2: the conflict when the link holds two values of one unique type, else None."""
    unique_types = view.unique_types
    found_types = [type_ for type_, _ in ctx.given.values() if type_ in unique_types]
    if len(found_types) == len(set(found_types)):  # keys are distinct: one value per unique type
        return None
    values: dict[str, set[str]] = {}
    for type_, value in ctx.given.values():  # the keys' identifiers, in the same order
        if type_ in unique_types:
            values.setdefault(type_, set()).add(value)
    for type_, found in values.items():
        if len(found) > 1:
            owners = sorted({o for k in keys if (o := view.resolve_key(k)) is not None})
            detail = f"the link holds {len(found)} values of the unique type {type_}"
            return conflict(ConflictReason.INPUT_CONTRADICTS, type_, found, owners, ctx, detail)
    return None


def plan(view: GraphView, keys: list[str], ctx: Link) -> Plan:
    """Rules 3 and 4: candidates in priority order, each accepted or refused against what is accepted."""
    decided = Plan()
    for key in keys:
        owner = view.resolve_key(key)
        if owner is None:
            _consider_new(view, decided, key, ctx)
        elif owner not in decided.seen:
            decided.seen.add(owner)
            _consider_one_id(view, decided, owner, ctx)
    return decided


def _consider_new(view: GraphView, decided: Plan, key: str, ctx: Link) -> None:
    type_, value = ctx.given[key]
    if type_ in view.unique_types:
        held = decided.uniques.get(type_)
        if held is not None and held != value:
            detail = f"{type_} {value!r} is new, but the OneID would already hold {held!r}"
            decided.conflicts.append(
                conflict(ConflictReason.UNIQUE_TYPE, type_, {held, value}, decided.accepted, ctx, detail)
            )
            return
        decided.uniques[type_] = value
    decided.new.append(key)


def _consider_one_id(view: GraphView, decided: Plan, one_id: str, ctx: Link) -> None:
    uniques = view.uniques_of(one_id)
    for type_, value in uniques.items():
        held = decided.uniques.get(type_)
        if held is not None and held != value:
            detail = f"OneID {one_id} holds {type_} {value!r}; the OneID it would join holds {held!r}"
            involved = [*decided.accepted, one_id]
            decided.conflicts.append(conflict(ConflictReason.UNIQUE_TYPE, type_, {held, value}, involved, ctx, detail))
            return
    apart = view.separated(one_id, decided.accepted)
    if apart is not None:
        detail = f"OneIDs {apart} and {one_id} were split apart by an unmerge"
        decided.conflicts.append(conflict(ConflictReason.SEPARATED, "", set(), [apart, one_id], ctx, detail))
        return
    decided.accepted.append(one_id)
    decided.uniques.update(uniques)


def conflict(
    reason: ConflictReason, type_: str, values: set[str], one_ids: Iterable[str], ctx: Link, detail: str
) -> Conflict:
    return Conflict(
        at=ctx.at,
        reason=reason,
        id_type=type_,
        values=tuple(sorted(values)),
        one_ids=tuple(sorted(set(one_ids))),
        identifiers=ctx.identifiers,
        source=ctx.source,
        detail=detail,
    )
