"""The customer 360° view (客户360视图): one customer's profile by any identifier, search, timeline, refresh.

The profile's seven topics come from the materialised `customer_profile`
(see `ProfileStore.refresh`; run after imports and simulations, and on a
schedule), so a lookup reads one row. A customer added since the last
refresh is computed on the spot, more slowly, and marked `computed="live"`.

Personal fields are decrypted and masked (`张*`, `138****1234`) unless the
caller passes `reveal=True` (the API allows it with `customers:reveal`).
Every read takes the caller's data `scope` (core/scope.py): a customer
outside it is "not found", exactly like one that does not exist, so a
scoped user cannot even learn who is a customer elsewhere.

Around the topics: identities (cust_no, phone, and what the identity lookup
links), tags (the tag engine's current values, M3), model scores (M6; the `clv`
figure of the value topic stays NULL until the CLV model writes it),
consent (empty until the consent store of the contact policy lands) and a
timeline of the latest events (touches join it with the journeys).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.identifiers import mask_name, mask_phone
from marketloop.core.personal import NAME, PHONE
from marketloop.core.scope import EVERYTHING, Scope
from marketloop.ports.clock import Clock
from marketloop.ports.profiles import ProfileRules, ProfileStore, RefreshProgress, RefreshResult, RefreshState
from marketloop.ports.tags import TagValue, TagValues
from marketloop.profiles.lookup import (
    CUST_NO,
    CustomerResolver,
    EventIdentityLookup,
    Identifier,
    Identity,
    IdentityLookup,
    parse_identifier,
)
from marketloop.profiles.search import CustomerSearch, SearchQuery, SearchResult
from marketloop.profiles.topics import DEFAULT_RULES, Topic, assemble
from marketloop.security.crypto import FieldCipher

MAX_TIMELINE_LIMIT = 200
MAX_TIMELINE_OFFSET = 10_000


@dataclass(frozen=True, kw_only=True)
class TimelineItem:
    """One entry of a customer's timeline: an event now; touches (kind "touch") with the journeys."""

    kind: str
    timestamp: datetime
    name: str | None
    type: str
    platform: str | None
    source: str
    message_id: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TimelinePage:
    items: list[TimelineItem]
    limit: int
    offset: int
    has_more: bool


@dataclass(frozen=True, kw_only=True)
class CustomerProfile:
    """The 360° view of one customer: seven topics and what surrounds them."""

    cust_no: str
    as_of: datetime | None  # the moment the figures describe
    computed: str  # "refresh": from the materialised profile; "live": computed for this request
    natural: dict[str, Any]
    assets: dict[str, Any]
    liabilities: dict[str, Any]
    risk: dict[str, Any]
    transactions: dict[str, Any]
    behaviour: dict[str, Any]
    value: dict[str, Any]
    identities: list[Identity]
    tags: list[TagValue]  # the customer's current tag values (标签), by tag
    attributes: dict[str, str]  # custom profile fields (自定义属性) journeys wrote, by name
    scores: dict[str, float]
    consent: list[dict[str, Any]]
    timeline: TimelinePage


class AttributeValues(Protocol):
    """A customer's custom profile fields (the warehouse's `customer_attributes`)."""

    def attributes_of(self, cust_no: str) -> dict[str, str]: ...


class ProfileService:
    """Reads, searches and refreshes customer profiles."""

    def __init__(
        self,
        store: ProfileStore,
        cipher: FieldCipher,
        clock: Clock,
        *,
        identities: IdentityLookup | None = None,
        rules: ProfileRules = DEFAULT_RULES,
        tags: TagValues | None = None,
        attributes: AttributeValues | None = None,
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._clock = clock
        self._rules = rules
        self._tags = tags
        self._attributes = attributes
        self._identities = identities or EventIdentityLookup(store)
        self._resolver = CustomerResolver(store, cipher, self._identities)
        self._search = CustomerSearch(store, cipher, self._resolver)

    @property
    def rules(self) -> ProfileRules:
        return self._rules

    def refresh(self, as_of: datetime | None = None, progress: RefreshProgress | None = None) -> RefreshResult:
        """Recompute every customer's profile as of `as_of` (default: now). Idempotent."""
        return self._store.refresh(as_of or self._clock.now(), self._rules, progress)

    def state(self) -> RefreshState | None:
        """The last completed refresh, or None before the first."""
        return self._store.state()

    def resolve(self, identifier: str) -> str:
        """The cust_no behind `identifier` (`TYPE:VALUE`, or a bare cust_no or phone); NOT_FOUND if none."""
        return self._resolve(parse_identifier(identifier))

    def _resolve(self, parsed: Identifier) -> str:
        cust_no = self._resolver.resolve(parsed)
        if cust_no is None:
            shown = mask_phone(parsed.value) if parsed.type == PHONE.source else parsed.value
            raise MarketloopError(
                kind=ErrorKind.NOT_FOUND,
                code="customer.not-found",
                title="No such customer",
                detail=f"no customer has the {parsed.type or 'customer number or phone'} {shown!r}",
            )
        return cust_no

    def profile(
        self,
        identifier: str,
        *,
        reveal: bool = False,
        timeline_limit: int = 20,
        timeline_offset: int = 0,
        scope: Scope = EVERYTHING,
    ) -> CustomerProfile:
        """The 360° view of the customer behind `identifier`; personal fields masked unless `reveal`."""
        cust_no, row, computed = self._find(parse_identifier(identifier))
        _check_scope(scope, row)
        topics = assemble(row, self._rules)
        natural = {
            "name": self._personal(row, NAME.encrypted, reveal),
            "phone": self._personal(row, PHONE.encrypted, reveal),
            **topics[Topic.NATURAL],
        }
        return CustomerProfile(
            cust_no=cust_no,
            as_of=row.get("profile_as_of"),
            computed=computed,
            natural=natural,
            assets=topics[Topic.ASSETS],
            liabilities=topics[Topic.LIABILITIES],
            risk=topics[Topic.RISK],
            transactions=topics[Topic.TRANSACTIONS],
            behaviour=topics[Topic.BEHAVIOUR],
            value=topics[Topic.VALUE],
            identities=self._identities_of(cust_no, natural["phone"], row.get("anonymous_ids") or []),
            tags=self._tags.values_of(cust_no) if self._tags is not None else [],
            attributes=self._attributes.attributes_of(cust_no) if self._attributes is not None else {},
            scores={},
            consent=[],
            timeline=self._timeline(cust_no, timeline_limit, timeline_offset),
        )

    def timeline(self, identifier: str, *, limit: int = 20, offset: int = 0, scope: Scope = EVERYTHING) -> TimelinePage:
        """The customer's latest events, newest first."""
        cust_no = self.resolve(identifier)
        if not scope.everything:
            _check_scope(scope, self._row(cust_no)[0])
        return self._timeline(cust_no, limit, offset)

    def search(self, query: SearchQuery, *, reveal: bool = False, scope: Scope = EVERYTHING) -> SearchResult:
        """Customers matching `query` within `scope`, by customer number, with total count; masked unless `reveal`."""
        return self._search.search(query, reveal=reveal, scope=scope)

    def _find(self, parsed: Identifier) -> tuple[str, dict[str, Any], str]:
        """(cust_no, profile row, how it was computed); a customer number is tried as the profile's key first."""
        if parsed.type in {None, CUST_NO}:
            row = self._store.profile(parsed.value)
            if row is not None:
                return parsed.value, row, "refresh"
        cust_no = self._resolve(parsed)
        return (cust_no, *self._row(cust_no))

    def _row(self, cust_no: str) -> tuple[dict[str, Any], str]:
        row = self._store.profile(cust_no)
        if row is not None:
            return row, "refresh"
        live = self._store.compute(cust_no, self._clock.now(), self._rules)
        if live is None:  # deleted between resolving and reading
            raise MarketloopError(kind=ErrorKind.NOT_FOUND, code="customer.not-found", title="No such customer")
        return live, "live"

    def _personal(self, row: dict[str, Any], column: str | None, reveal: bool) -> str | None:
        ciphertext = row.get(column or "")
        if not ciphertext or column is None:
            return None
        value = self._cipher.decrypt(ciphertext, context=column)
        if reveal:
            return value
        return mask_phone(value) if column == PHONE.encrypted else mask_name(value)

    def _identities_of(self, cust_no: str, phone: str | None, anonymous_ids: list[str]) -> list[Identity]:
        """cust_no and phone first, then what the identity lookup links, then the events' anonymous ids."""
        listed = [Identity(type=CUST_NO, value=cust_no)]
        if phone is not None:
            listed.append(Identity(type=PHONE.source, value=phone))
        listed += [i for i in self._identities.identities_of(cust_no) if i.type not in {CUST_NO, PHONE.source}]
        listed += [Identity(type="anonymous_id", value=str(v)) for v in anonymous_ids]
        return list(dict.fromkeys(listed))

    def _timeline(self, cust_no: str, limit: int, offset: int) -> TimelinePage:
        if not 0 <= limit <= MAX_TIMELINE_LIMIT or not 0 <= offset <= MAX_TIMELINE_OFFSET:
            raise MarketloopError(
                kind=ErrorKind.INVALID,
                code="customer.invalid-timeline-page",
                title="The timeline page is not valid",
                detail=f"limit must be 0 to {MAX_TIMELINE_LIMIT}, offset 0 to {MAX_TIMELINE_OFFSET}",
            )
        if limit == 0:
            return TimelinePage(items=[], limit=0, offset=offset, has_more=False)
        events = self._store.timeline(cust_no, self._rules, limit=limit + 1, offset=offset)
        items = [
            TimelineItem(
                kind="event",
                timestamp=e.timestamp,
                name=e.event,
                type=e.type,
                platform=e.platform,
                source=e.source,
                message_id=e.message_id,
                properties=e.properties,
            )
            for e in events[:limit]
        ]
        return TimelinePage(items=items, limit=limit, offset=offset, has_more=len(events) > limit)


def _check_scope(scope: Scope, row: dict[str, Any]) -> None:
    """Outside the caller's scope is "no such customer": the same answer as for a stranger."""
    if not scope.allows(row.get("branch_id"), row.get("rm_id")):
        raise MarketloopError(kind=ErrorKind.NOT_FOUND, code="customer.not-found", title="No such customer")
