"""OneID: the identity service. Owns the in-memory graph, applies links and unmerges, and persists them.

The graph is loaded from the `IdentityStore` on first use and is the only
copy the process reads; every change is persisted before it is acted on (before
the loader commits the events it attributed, before an API call returns).
One lock serialises writers: the loader's batches, API merges and unmerges.

Raw identifier values are normalised (`IdentifierTypes.normalise`) and, for
protected types, replaced by `FieldCipher.keyed_hash(type, value)` here, so
neither the graph nor its tables ever hold a plain phone or ID number.

A batch (the loader's, an import's) pauses Python's cyclic garbage collector
while it links and persists: it builds a hundred thousand and more small
objects that survive to the end of the batch (the change set's rows) and hold
no reference cycles, and each of them would otherwise trigger scans of the
whole heap - in a large process most of a batch's time. Reference counting
still frees everything; cycles made meanwhile are collected once it resumes.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import msgspec

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import Event
from marketloop.core.identities import (
    DEFAULT_TYPES,
    MAX_VALUE_LENGTH,
    Conflict,
    HistoryRecord,
    Identifier,
    IdentifierTypes,
    LinkOutcome,
    UnmergeOutcome,
    invalid,
)
from marketloop.core.identity_graph import IdentityGraph
from marketloop.identity.extract import KEY_PATHS, EventIdentity, custom_identifiers, decoder, raw_identifiers
from marketloop.ports.clock import Clock
from marketloop.ports.identity import IdentityStore
from marketloop.ports.warehouse import Attribution, KeyPath
from marketloop.security.crypto import FieldCipher

log = logging.getLogger(__name__)

_Resolved = tuple[str | None, str | None, str | None]  # (one_id, id_type, id_value)
_NOTHING: _Resolved = (None, None, None)
_RawIdentifiers = tuple[tuple[str, str], ...]
RECENT_LIMIT = 200_000  # raw identifier sets remembered between batches
IDENTIFIER_CACHE_LIMIT = 200_000  # (type, raw value) -> normalised (and hashed) value: ~50 MB at most


@dataclass(frozen=True, kw_only=True)
class Person:
    """A live OneID as the API shows it: its identifiers (protected values hashed) and what merged into it."""

    one_id: str
    created_at: datetime
    identifiers: tuple[Identifier, ...]
    protected_types: frozenset[str]
    merged: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class CustomerLinks:
    """What linking one import's customers did: customers with an identifier, identifiers, refused joins."""

    customers: int
    identifiers: int
    conflicts: int


# The columns of an imported customer row that are identifiers, by identifier type (values in clear).
CUSTOMER_IDENTIFIERS = ("cust_no", "id_card", "phone", "email")


@dataclass(frozen=True, kw_only=True)
class UnmergeResult:
    outcome: UnmergeOutcome
    events_reattributed: int


class IdentityService:
    """Identifier -> OneID for the loader and the API (the loader's `Resolver`)."""

    def __init__(
        self, store: IdentityStore, cipher: FieldCipher, clock: Clock, types: IdentifierTypes | None = None
    ) -> None:
        self.types = types or IdentifierTypes()
        builtin = {t.name for t in DEFAULT_TYPES}
        # Custom types (settings) arrive in events as `traits.<name>`.
        self._custom = tuple(t.name for t in self.types if t.name not in builtin)
        self._key_paths = (*KEY_PATHS, *(("traits", name) for name in self._custom))
        self._protected = frozenset(t.name for t in self.types if t.protected)
        self._store = store
        self._cipher = cipher
        self._clock = clock
        self._loaded: IdentityGraph | None = None  # loaded on first use: a CLI command may never need it
        self._load_lock = threading.Lock()
        self._lock = threading.Lock()
        # Raw identifiers of recent events -> their resolution. Linking the same identifiers again changes
        # nothing, a merge leaves the old OneID valid (it redirects), and a refused link is refused again, so
        # this stays right until an unmerge moves identifiers: `unmerge` clears it.
        self._recent: dict[_RawIdentifiers, _Resolved] = {}
        # (type, raw value) -> its identifier's value (normalised, hashed when protected), or None when it does
        # not normalise. Both steps are pure (the hashing key does not change), so this is never stale; cleared
        # when full, so it stays bounded. It holds strings, not identifiers: plain strings and tuples of them
        # are left alone by the cyclic garbage collector, a named tuple is not.
        self._values: dict[tuple[str, str], str | None] = {}

    @property
    def _graph(self) -> IdentityGraph:
        graph = self._loaded
        if graph is None:
            with self._load_lock:
                if self._loaded is None:
                    self._loaded = IdentityGraph.from_snapshot(self._store.load(), self.types)
                graph = self._loaded
        return graph

    # -- identifiers -------------------------------------------------------------

    def identifier(self, type_name: str, raw: str) -> Identifier:
        """The identifier as the graph holds it: normalised, hashed when protected; INVALID when not valid."""
        found = self._identifier_or_none(type_name, raw)
        if found is None:
            raise invalid("bad-value", f"Not a valid {type_name}", "the value does not normalise")
        return found

    def hashed(self, type_name: str, hashed_value: str) -> Identifier:
        """A protected identifier given by its keyed hash (as `show` lists it)."""
        if not self.types.get(type_name).protected:
            raise invalid("not-protected", f"{type_name} is not a protected type; give its value")
        return Identifier(type_name, hashed_value.strip().lower())

    def _identifier_or_none(self, type_name: str, raw: str) -> Identifier | None:
        return self._cached_identifier((type_name, raw))

    def _cached_identifier(self, raw: tuple[str, str]) -> Identifier | None:
        """`_identifier_or_none(*raw)`, remembered: an event's identifiers recur in the events around it."""
        cache = self._values
        if raw in cache:
            value = cache[raw]
        else:
            type_name, text = raw
            value = self.types.normalise(type_name, text)  # raises for an unknown type: nothing is cached
            if value is not None and type_name in self._protected:
                value = self._cipher.keyed_hash(type_name, value)
            if len(text) <= MAX_VALUE_LENGTH:  # an over-long value (refused anyway) is not kept
                if len(cache) >= IDENTIFIER_CACHE_LIMIT:
                    cache.clear()
                cache[raw] = value
        return None if value is None else Identifier(raw[0], value)

    def identifiers_of(self, event: Event | EventIdentity) -> list[Identifier]:
        """The valid identifiers `event` carries (see `marketloop.identity.extract`), protected ones hashed."""
        custom: _RawIdentifiers = ()
        if isinstance(event, Event):
            record = msgspec.json.encode(event)
            event, custom = decoder.decode(record), custom_identifiers(record, self._custom)
        return self._valid(raw_identifiers(event) + custom)

    def _valid(self, raw: _RawIdentifiers) -> list[Identifier]:
        cached = self._cached_identifier
        return [i for pair in raw if (i := cached(pair)) is not None]

    # -- reading -----------------------------------------------------------------

    def resolve(self, identifier: Identifier) -> str | None:
        """The OneID of `identifier`; lock-free, so a concurrent merge may be seen a moment late."""
        return self._graph.resolve(identifier)

    def show(self, identifier: Identifier) -> Person:
        one_id = self._graph.resolve(identifier)
        if one_id is None:
            raise MarketloopError(
                kind=ErrorKind.NOT_FOUND,
                code="identity.unknown-identifier",
                title="No OneID has this identifier",
                detail=identifier.type,
            )
        return self.person(one_id)

    def person(self, one_id: str) -> Person:
        """The live person `one_id` is (following merges); NOT_FOUND when it was never issued."""
        with self._lock:
            live = self._graph.canonical(one_id)
            origin = None if live is None else self._graph.origin(live)
            if live is None or origin is None:
                raise MarketloopError(
                    kind=ErrorKind.NOT_FOUND, code="identity.unknown-one-id", title="No such OneID", detail=one_id
                )
            return Person(
                one_id=live,
                created_at=origin.created_at,
                identifiers=self._graph.members(live),
                protected_types=self._protected,
                merged=tuple(sorted(self._graph.absorbed(live))),
            )

    def history(self, one_id: str, *, limit: int = 1000) -> tuple[list[HistoryRecord], list[Conflict]]:
        """Merges and unmerges of this person (and of the OneIDs merged into it), and its refused merges."""
        person = self.person(one_id)
        one_ids = [person.one_id, *person.merged]
        if one_id not in one_ids:
            one_ids.append(one_id)
        return self._store.history(one_ids, limit=limit), self._store.conflicts(one_ids, limit=limit)

    # -- changing ----------------------------------------------------------------

    def link(self, identifiers: Sequence[Identifier], *, reason: str, source: str, strict: bool = False) -> LinkOutcome:
        """Link `identifiers` now (`IdentityGraph.link`) and persist the result before returning."""
        with self._lock:
            outcome = self._graph.link(identifiers, at=self._clock.now(), reason=reason, source=source, strict=strict)
            self._persist()
        return outcome

    def link_many(
        self, batch: Iterable[Sequence[Identifier]], *, reason: str, source: str, at: datetime | None = None
    ) -> list[LinkOutcome]:
        """Link each group of identifiers in turn (as `link`, not strict), persisting once at the end: imports.

        All of the batch is persisted or, when persisting fails, kept to be
        persisted with the next change (the links stay in the graph).
        """
        when = at or self._clock.now()
        with self._lock, _collector_paused():
            outcomes = [self._graph.link(group, at=when, reason=reason, source=source) for group in batch]
            self._persist()
        return outcomes

    def link_customers(self, customers: Iterable[Mapping[str, object]], *, source: str) -> CustomerLinks:
        """Link each imported customer's identifiers (`CUSTOMER_IDENTIFIERS` columns, values in clear).

        Values that do not normalise are skipped, as in events; a customer whose
        identifiers the rules refuse to join (e.g. a phone already held by a
        customer number of a unique type) keeps what it can and the conflict is
        recorded in the graph's history, as `link_many` does.
        """
        groups: list[list[Identifier]] = []
        for row in customers:
            found = [
                identifier
                for type_name in CUSTOMER_IDENTIFIERS
                if isinstance(raw := row.get(type_name), str)
                and (identifier := self._identifier_or_none(type_name, raw)) is not None
            ]
            if found:
                groups.append(found)
        outcomes = self.link_many(groups, reason="import", source=source)
        return CustomerLinks(
            customers=len(groups),
            identifiers=sum(len(group) for group in groups),
            conflicts=sum(len(outcome.conflicts) for outcome in outcomes),
        )

    def merge(self, identifiers: Sequence[Identifier], *, reason: str, source: str) -> LinkOutcome:
        """A deliberate merge (API, CLI): all or nothing; CONFLICT, with the reasons, when the rules refuse it.

        The refusal is recorded in the conflicts before the error is raised.
        """
        outcome = self.link(identifiers, reason=reason, source=source, strict=True)
        if outcome.conflicts:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="identity.merge-refused",
                title="The identity rules refuse this merge",
                detail="; ".join(f"{c.reason.value}: {c.detail}" for c in outcome.conflicts),
            )
        return outcome

    def unmerge(self, one_id: str, identifiers: Sequence[Identifier], *, actor: str) -> UnmergeResult:
        """Split `identifiers` off `one_id`, persist it and re-attribute their loaded events, atomically."""
        with self._lock:
            outcome = self._graph.unmerge(one_id, identifiers, at=self._clock.now(), actor=actor)
            self._recent.clear()
            moved = self._persist()
        log.info("unmerge by %s: %s -> %s, %s events re-attributed", actor, outcome.from_one_id, outcome.one_id, moved)
        return UnmergeResult(outcome=outcome, events_reattributed=moved)

    def _persist(self) -> int:
        changes = self._graph.changes()
        if not changes:
            return 0
        moved = self._store.persist(changes)  # raises: the journal is kept and retried with the next change
        self._graph.clear_changes()
        return moved

    # -- the loader's resolver -----------------------------------------------------

    @property
    def key_paths(self) -> Sequence[KeyPath]:
        return self._key_paths

    @contextmanager
    def attribute(self, records: Sequence[bytes]) -> Iterator[Attribution]:
        """Link and resolve each record's identifiers, persist the links, then hold the lock while loading."""
        with self._lock:
            with _collector_paused():
                attribution = self._attribute(records)
                self._persist()
            yield attribution

    def _attribute(self, records: Iterable[bytes]) -> Attribution:
        resolved: list[_Resolved] = []
        recent = self._recent
        if len(recent) > RECENT_LIMIT:
            recent.clear()
        for record in records:
            try:
                event = decoder.decode(record)
            except msgspec.DecodeError as error:
                log.warning("an event record cannot be read for its identity (%s); it gets no OneID", error)
                resolved.append(_NOTHING)
                continue
            raw = () if event.quarantined else raw_identifiers(event) + custom_identifiers(record, self._custom)
            found = recent.get(raw)
            if found is None:
                found = recent[raw] = self._resolve_event(event, raw) if raw else _NOTHING
            resolved.append(found)
        return Attribution(
            one_ids=[r[0] for r in resolved], id_types=[r[1] for r in resolved], id_values=[r[2] for r in resolved]
        )

    def _resolve_event(self, event: EventIdentity, raw: _RawIdentifiers) -> _Resolved:
        identifiers = self._valid(raw)
        if not identifiers:
            return _NOTHING
        source = f"{event.source_id}/{event.message_id}"
        outcome = self._graph.link(identifiers, at=event.received_at, reason=event.type, source=source)
        anchor = self.types.anchor(identifiers)
        one_id = outcome.one_id
        if one_id is None:  # the event contradicts itself: it still belongs to its best identifier
            one_id = self._graph.link([anchor], at=event.received_at, reason=event.type, source=source).one_id
        return one_id, anchor.type, anchor.value


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a batch (module docstring); as it was afterwards.

    When it is already off (another batch, or the application turned it off) this leaves it alone.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
