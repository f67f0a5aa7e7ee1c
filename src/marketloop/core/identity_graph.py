"""The identity graph: which identifiers are one person (OneID); it applies the merge rules and unmerges.

Owns the in-memory map identifier -> OneID, each OneID's members, the
redirects of merged-away OneIDs, the separations unmerges leave behind, and a
journal of changes for a store to persist. Pure: no I/O, no clock.

OneIDs are deterministic: a OneID issued for identifier `t:v` is
`uuid5(ONE_ID_NAMESPACE, "t:v")` (values of protected types are keyed hashes,
so a OneID does not reveal a phone number); one issued by an unmerge is
`uuid5(ONE_ID_NAMESPACE, "unmerge:<from>:<moved keys>")`; on the rare clash
with an issued id, `#1`, `#2`, ... is appended to the seed. Replaying the same
links and unmerges therefore gives the same OneIDs.

`link(identifiers)` applies the merge rules of `marketloop.core.identity_rules`
(stated there exactly): links are idempotent, and without conflicts the
resulting partition is the connected components of all links, whatever
their order. Accepted OneIDs merge into the oldest (earliest `created_at`,
then the smaller id); the others redirect to it, always in one hop.

`unmerge(one_id, identifiers)` moves those identifiers (a non-empty proper
subset of the members) to another OneID: a merged-away OneID of this person
whose issuing identifier is among them comes back to life (the oldest such),
else a new one is issued. The two stay separated: no later link merges them
again. Redirects of merged-away OneIDs keep pointing at the survivor.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from marketloop.core import identity_rules as rules
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.identities import (
    KEY_SEPARATOR,
    Conflict,
    HistoryRecord,
    Identifier,
    IdentifierTypes,
    IdentityChanges,
    IdentityRow,
    IdentitySnapshot,
    LinkOutcome,
    MergeRecord,
    OneIdRow,
    Origin,
    Reattribution,
    Redirect,
    UnmergeOutcome,
    UnmergeRecord,
    invalid,
)
from marketloop.core.identity_rules import Link, Plan, split_key

ONE_ID_NAMESPACE = uuid.UUID("6f1c0b8e-3d4a-5b7e-9a21-4c0e7d2f9b10")
_NAMESPACE_BYTES = ONE_ID_NAMESPACE.bytes


def one_id_for(seed: str) -> str:
    """`str(uuid.uuid5(ONE_ID_NAMESPACE, seed))`, computed directly (the uuid module is slow on this hot path)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + seed.encode(), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass
class _Journal:
    touched: set[str] = field(default_factory=set)  # identifier keys whose OneID is new or changed
    # new keys: (at, source). No identifier objects: the journal holds a batch's keys until they are persisted,
    # and a tuple of plain values is one the cyclic garbage collector stops tracking, a named tuple is not.
    first_seen: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    issued: set[str] = field(default_factory=set)
    redirects: dict[str, datetime] = field(default_factory=dict)  # set or removed, with when
    history: list[HistoryRecord] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    reattributions: list[Reattribution] = field(default_factory=list)


class IdentityGraph:
    """Identifiers -> OneIDs under the rules of the module docstring. Not thread-safe: callers serialise writes."""

    def __init__(self, types: IdentifierTypes | None = None) -> None:
        self.types = types or IdentifierTypes()
        self.unique_types = frozenset(t.name for t in self.types if t.unique)
        self._type_names = frozenset(t.name for t in self.types)
        self._owner: dict[str, str] = {}  # identifier key -> live OneID
        # live OneID -> identifier keys. Tuples, not lists: a tuple of strings is not tracked by the cyclic
        # garbage collector, so a million people do not make every full collection rescan them.
        self._members: dict[str, tuple[str, ...]] = {}
        self._origins: dict[str, tuple[datetime, str]] = {}  # every issued OneID -> (created_at, creator key)
        self._redirects: dict[str, str] = {}  # merged-away OneID -> live OneID (always one hop)
        self._absorbed: dict[str, set[str]] = {}  # live OneID -> OneIDs redirecting to it
        self._separations: dict[str, set[str]] = {}  # issued OneID -> issued OneIDs it must not join
        self._conflict_keys: set[str] = set()
        self._journal = _Journal()

    # -- reading ---------------------------------------------------------------

    def resolve(self, identifier: Identifier) -> str | None:
        """The OneID of `identifier`, or None when the graph has not seen it."""
        return self._owner.get(identifier.key)

    def resolve_key(self, key: str) -> str | None:
        """`resolve` by `Identifier.key`, for hot paths that already hold the key."""
        return self._owner.get(key)

    def canonical(self, one_id: str) -> str | None:
        """The live OneID `one_id` is now: itself, its survivor when merged away, None when never issued."""
        return one_id if one_id in self._members else self._redirects.get(one_id)

    def members(self, one_id: str) -> tuple[Identifier, ...]:
        """Identifiers of a live OneID, highest priority first; empty when `one_id` is not live."""
        return tuple(Identifier.from_key(k) for k in self.types.sort_keys(self._members.get(one_id, ())))

    def origin(self, one_id: str) -> Origin | None:
        found = self._origins.get(one_id)
        return None if found is None else Origin(created_at=found[0], creator=Identifier.from_key(found[1]))

    def absorbed(self, one_id: str) -> frozenset[str]:
        """The merged-away OneIDs that redirect to live `one_id`."""
        return frozenset(self._absorbed.get(one_id, ()))

    @property
    def redirects(self) -> Mapping[str, str]:
        """Merged-away OneID -> the live OneID it became (read-only view)."""
        return MappingProxyType(self._redirects)

    def live_one_ids(self) -> Iterator[str]:
        return iter(self._members)

    def identifier_count(self) -> int:
        return len(self._owner)

    # -- linking ---------------------------------------------------------------

    def link(
        self, identifiers: Iterable[Identifier], *, at: datetime, reason: str, source: str, strict: bool = False
    ) -> LinkOutcome:
        """Put `identifiers` in one OneID as far as the rules allow (module docstring); idempotent."""
        given = {f"{i[0]}{KEY_SEPARATOR}{i[1]}": i for i in identifiers}  # i.key, without the property call
        owner = self._owner
        owners = {owner.get(k) for k in given}
        if len(owners) == 1 and None not in owners:  # all known, all in one OneID: nothing to do
            return LinkOutcome(one_id=owners.pop())
        keys = self._keys_of(given)
        ctx = Link(at=at, reason=reason, source=source, given={k: given[k] for k in keys})
        contradiction = rules.contradiction(self, keys, ctx)
        if contradiction is not None:
            return LinkOutcome(one_id=owner.get(keys[0]), conflicts=self._record([contradiction]))
        if len(owners) <= 2 and None in owners and (outcome := self._join_new(owners, keys, ctx)) is not None:
            return outcome
        plan = rules.plan(self, keys, ctx)
        if plan.conflicts and strict:
            return LinkOutcome(one_id=self._owner.get(keys[0]), conflicts=self._record(plan.conflicts))
        return self._apply(plan, ctx)

    def _keys_of(self, given: dict[str, Identifier]) -> list[str]:
        """The keys of `given` (key -> identifier) in priority order; INVALID when one is not a valid identifier."""
        keys = self.types.sort_given(given)
        if not keys:
            raise invalid("empty", "A link needs at least one identifier")
        names = self._type_names
        for key in keys:
            type_, value = given[key]
            if type_ not in names:
                self.types.get(type_)  # raises, naming the known types
            if not value or KEY_SEPARATOR in value:
                raise invalid("bad-value", "An identifier value is empty or holds a control character", type_)
        return keys

    def _join_new(self, owners: set[str | None], keys: list[str], ctx: Link) -> LinkOutcome | None:
        """The common links, decided without `rules.plan` (the same outcome), or None for the general path.

        The link does not contradict itself. When no identifier is known (a
        first visit), all join a OneID issued for the anchor. When the known
        ones are all in one OneID and the new ones add no unique type it holds
        (a new device of a known customer), nothing is refused: the new ones
        join it.
        """
        given = ctx.given
        if len(owners) == 1:  # {None}
            anchor = given[keys[0]]
            one_id = self._issue(keys[0], f"{anchor[0]}:{anchor[1]}", ctx.at)
            self._attach_all(one_id, keys, ctx)
            return LinkOutcome(one_id=one_id, created=one_id, attached=tuple(given.values()))
        one_id = next(o for o in owners if o is not None)
        owner = self._owner
        new = [k for k in keys if k not in owner]
        held = self.uniques_of(one_id)
        if any(given[k][0] in held for k in new):  # refused: let the rules say which and why
            return None
        self._attach_all(one_id, new, ctx)
        return LinkOutcome(one_id=one_id, attached=tuple(given[k] for k in new))

    def _attach_all(self, one_id: str, keys: list[str], ctx: Link) -> None:
        """`_attach` each of `keys`, in order."""
        self._members[one_id] += tuple(keys)
        owner, first_seen = self._owner, self._journal.first_seen
        seen = (ctx.at, ctx.source)
        for key in keys:
            owner[key] = one_id
            first_seen[key] = seen
        self._journal.touched.update(keys)

    def uniques_of(self, one_id: str) -> dict[str, str]:
        """Unique type -> the value live `one_id` holds."""
        found: dict[str, str] = {}
        unique_types = self.unique_types
        for key in self._members[one_id]:
            type_, _, value = key.partition(KEY_SEPARATOR)
            if type_ in unique_types:
                found[type_] = value
        return found

    def separated(self, one_id: str, accepted: Sequence[str]) -> str | None:
        """An accepted OneID an unmerge separated from `one_id` (or from one merged into it), if any."""
        if not self._separations or not accepted:
            return None
        for issued in (one_id, *self._absorbed.get(one_id, ())):
            for other in self._separations.get(issued, ()):
                live = self.canonical(other)
                if live in accepted:
                    return live
        return None

    def _record(self, conflicts: Sequence[Conflict]) -> tuple[Conflict, ...]:
        for conflict in conflicts:
            if conflict.key not in self._conflict_keys:
                self._conflict_keys.add(conflict.key)
                self._journal.conflicts.append(conflict)
        return tuple(conflicts)

    def _apply(self, plan: Plan, ctx: Link) -> LinkOutcome:
        created = None
        if plan.accepted:
            survivor = min(plan.accepted, key=self._age)
        else:
            type_, value = ctx.given[plan.new[0]]
            survivor = created = self._issue(plan.new[0], f"{type_}:{value}", ctx.at)
        absorbed = tuple(o for o in plan.accepted if o != survivor)
        for one_id in absorbed:
            self._absorb(survivor, one_id, ctx)
        for key in plan.new:
            self._attach(survivor, key, ctx)
        return LinkOutcome(
            one_id=survivor,
            created=created,
            absorbed=absorbed,
            attached=tuple(ctx.given[k] for k in plan.new),
            conflicts=self._record(plan.conflicts),
        )

    def _age(self, one_id: str) -> tuple[datetime, str]:
        return self._origins[one_id][0], one_id

    def _issue(self, creator: str, seed: str, at: datetime) -> str:
        one_id = one_id_for(seed)
        salt = 0
        while one_id in self._origins:
            salt += 1
            one_id = one_id_for(f"{seed}#{salt}")
        self._origins[one_id] = (at, creator)
        self._members[one_id] = ()
        self._journal.issued.add(one_id)
        return one_id

    def _absorb(self, survivor: str, absorbed: str, ctx: Link) -> None:
        moved = self._members.pop(absorbed)
        for key in moved:
            self._owner[key] = survivor
        self._members[survivor] += moved
        self._journal.touched.update(moved)
        into = self._absorbed.setdefault(survivor, set())
        for one_id in (absorbed, *self._absorbed.pop(absorbed, ())):
            self._redirects[one_id] = survivor
            into.add(one_id)
            self._journal.redirects[one_id] = ctx.at
        self._journal.history.append(
            MergeRecord(
                at=ctx.at,
                survivor=survivor,
                absorbed=absorbed,
                reason=ctx.reason,
                source=ctx.source,
                identifiers=ctx.identifiers,
            )
        )

    def _attach(self, one_id: str, key: str, ctx: Link) -> None:
        self._owner[key] = one_id
        self._members[one_id] += (key,)
        self._journal.touched.add(key)
        self._journal.first_seen[key] = (ctx.at, ctx.source)

    # -- unmerging -------------------------------------------------------------

    def unmerge(self, one_id: str, identifiers: Iterable[Identifier], *, at: datetime, actor: str) -> UnmergeOutcome:
        """Split `identifiers` off the person `one_id` (module docstring); returns where they went.

        Raises NOT_FOUND for an unknown OneID, INVALID when an identifier is
        not a member or when all of them would move.
        """
        live = self.canonical(one_id)
        if live is None:
            raise MarketloopError(
                kind=ErrorKind.NOT_FOUND, code="identity.unknown-one-id", title="No such OneID", detail=one_id
            )
        keys = self._split_keys(live, identifiers)
        person = (live, *sorted(self._absorbed.get(live, ())))
        target, revived = self._split_target(live, keys, at)
        keyset = set(keys)
        self._members[live] = tuple(k for k in self._members[live] if k not in keyset)
        self._members[target] += tuple(keys)
        for key in keys:
            self._owner[key] = target
        self._journal.touched.update(keys)
        self._separations.setdefault(live, set()).add(target)
        self._separations.setdefault(target, set()).add(live)
        moved = tuple(Identifier.from_key(k) for k in keys)
        self._journal.history.append(
            UnmergeRecord(at=at, from_one_id=live, to_one_id=target, identifiers=moved, actor=actor, revived=revived)
        )
        self._journal.reattributions.append(
            Reattribution(one_ids=person, moved=moved, to_one_id=target, rest_one_id=live)
        )
        return UnmergeOutcome(from_one_id=live, one_id=target, moved=moved, revived=revived)

    def _split_keys(self, live: str, identifiers: Iterable[Identifier]) -> list[str]:
        keys = self.types.sort_keys(i.key for i in identifiers)
        if not keys:
            raise invalid("empty-unmerge", "Name the identifiers to split off")
        members = set(self._members[live])
        strangers = [k for k in keys if k not in members]
        if strangers:
            names = ", ".join(f"{t}:{v}" for t, v in map(split_key, strangers))
            raise invalid("not-a-member", "An identifier to split off is not in this OneID", names)
        if len(keys) == len(members):
            raise invalid("unmerge-everything", "An unmerge must leave at least one identifier behind")
        return keys

    def _split_target(self, live: str, keys: list[str], at: datetime) -> tuple[str, bool]:
        keyset = set(keys)
        candidates = [x for x in self._absorbed.get(live, ()) if self._origins[x][1] in keyset]
        if not candidates:
            return self._issue(keys[0], f"unmerge:{live}:{','.join(keys)}", at), False
        revived = min(candidates, key=self._age)
        del self._redirects[revived]
        self._absorbed[live].discard(revived)
        if not self._absorbed[live]:
            del self._absorbed[live]
        self._members[revived] = ()
        self._journal.redirects[revived] = at
        return revived, True

    # -- persistence -----------------------------------------------------------

    def changes(self) -> IdentityChanges:
        """What changed since `clear_changes`; the journal is kept until then, so a failed persist can retry."""
        journal = self._journal
        redirects = tuple(
            Redirect(from_one_id=f, to_one_id=self._redirects[f], at=at)
            for f, at in journal.redirects.items()
            if f in self._redirects
        )
        return IdentityChanges(
            identities=tuple(self._row(key) for key in journal.touched),
            one_ids=tuple(OneIdRow(one_id=o, origin=self._origin(o)) for o in sorted(journal.issued)),
            redirects=redirects,
            removed_redirects=tuple(sorted(f for f in journal.redirects if f not in self._redirects)),
            history=tuple(journal.history),
            conflicts=tuple(journal.conflicts),
            reattributions=tuple(journal.reattributions),
        )

    def _row(self, key: str) -> IdentityRow:
        seen = self._journal.first_seen.get(key)
        if seen is None:
            return IdentityRow(Identifier.from_key(key), self._owner[key], None, None)
        return IdentityRow(Identifier.from_key(key), self._owner[key], seen[0], seen[1])

    def _origin(self, one_id: str) -> Origin:
        created_at, creator = self._origins[one_id]
        return Origin(created_at=created_at, creator=Identifier.from_key(creator))

    def clear_changes(self) -> None:
        """Forget the journal: call after the changes were persisted."""
        self._journal = _Journal()

    def snapshot(self) -> IdentitySnapshot:
        """The whole graph as a store would load it, sorted: two graphs are equal when their snapshots are."""
        owner = sorted(self._owner.items())
        return IdentitySnapshot(
            identity_keys=tuple(k for k, _ in owner),
            identity_one_ids=tuple(o for _, o in owner),
            origins=tuple((o, *self._origins[o]) for o in sorted(self._origins)),
            redirects=tuple(sorted(self._redirects.items())),
            separations=tuple(sorted((a, b) for a, others in self._separations.items() for b in others if a < b)),
            conflict_keys=tuple(sorted(self._conflict_keys)),
        )

    @classmethod
    def from_snapshot(cls, snapshot: IdentitySnapshot, types: IdentifierTypes | None = None) -> IdentityGraph:
        """A graph holding what `snapshot` holds, with an empty journal."""
        graph = cls(types)
        interned: dict[str, str] = {}
        members: dict[str, list[str]] = {}
        for key, one_id in zip(snapshot.identity_keys, snapshot.identity_one_ids, strict=True):
            one_id = interned.setdefault(one_id, one_id)
            graph._owner[key] = one_id
            members.setdefault(one_id, []).append(key)
        graph._members = {one_id: tuple(keys) for one_id, keys in members.items()}
        del members
        for one_id, created_at, creator in snapshot.origins:
            graph._origins[interned.get(one_id, one_id)] = (created_at, creator)
        for absorbed, survivor in snapshot.redirects:
            graph._redirects[absorbed] = survivor
            graph._absorbed.setdefault(survivor, set()).add(absorbed)
        for a, b in snapshot.separations:
            graph._separations.setdefault(a, set()).add(b)
            graph._separations.setdefault(b, set()).add(a)
        graph._conflict_keys.update(snapshot.conflict_keys)
        return graph
