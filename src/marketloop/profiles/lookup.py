"""From any identifier a user types to the customer number: `TYPE:VALUE` or a bare value.

cust_no and phone are looked up in the bank's own customers table (a phone
by the keyed hash of its normalised form). Every other identifier type
(user_id, device_id, anonymous_id, wechat_openid, …) goes through an
`IdentityLookup`: `OneIdLookup` asks the OneID graph which person holds the
identifier and takes that person's cust_no; `EventIdentityLookup`, for data
loaded without OneID, only knows what the events link (a `user_id` that is
a customer number, an `anonymous_id` seen with one).
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from typing import Protocol

from marketloop.core import identities as oneid
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.identifiers import normalise_phone
from marketloop.ports.profiles import ProfileStore
from marketloop.security.crypto import FieldCipher

CUST_NO = "cust_no"
PHONE = "phone"
# Identifier types a `TYPE:` prefix may name (OneID's, and short aliases); other prefixes are part of a bare value.
ALIASES = {"openid": "wechat_openid", "unionid": "wechat_unionid"}
IDENTIFIER_TYPES = frozenset({t.name for t in oneid.DEFAULT_TYPES} | set(ALIASES))
MAX_IDENTIFIER = 256


@dataclass(frozen=True, kw_only=True)
class Identifier:
    """What the user asked for: a type (None for a bare value) and the value."""

    type: str | None
    value: str


@dataclass(frozen=True, kw_only=True)
class Identity:
    """One identifier of a customer, as the profile shows it (personal values masked by the service)."""

    type: str
    value: str


class IdentityLookup(Protocol):
    """Resolves identifiers other than cust_no and phone, and lists a customer's identifiers."""

    def customer_of(self, kind: str, value: str) -> str | None:
        """The cust_no of the customer `value` (an identifier of type `kind`) belongs to, or None."""
        ...

    def identities_of(self, cust_no: str) -> list[Identity]:
        """The customer's identifiers other than cust_no and phone (which the profile shows itself)."""
        ...


class EventIdentityLookup:
    """`IdentityLookup` from what the events link, until the OneID engine replaces it.

    A `user_id` is taken to be a cust_no; an `anonymous_id` (or `device_id`,
    which the SDKs send as the anonymous id) belongs to the customer whose
    `user_id` it was seen with. Other types are unknown here. The anonymous ids
    a customer's events link are in the profile row, so it lists none itself.
    """

    ANONYMOUS = frozenset({"anonymous_id", "device_id"})

    def __init__(self, store: ProfileStore) -> None:
        self._store = store

    def customer_of(self, kind: str, value: str) -> str | None:
        if kind == "user_id":
            return self._store.customer_by_event_identifier("user_id", value)
        if kind in self.ANONYMOUS:
            return self._store.customer_by_event_identifier("anonymous_id", value)
        return None

    def identities_of(self, cust_no: str) -> list[Identity]:
        """None beyond what the profile row links itself (its `anonymous_ids`)."""
        return []


class OneIdPerson(Protocol):
    """What `OneIdLookup` reads of a OneID's person."""

    @property
    def one_id(self) -> str: ...

    @property
    def identifiers(self) -> tuple[oneid.Identifier, ...]: ...

    @property
    def protected_types(self) -> Set[str]: ...


class OneIdGraph(Protocol):
    """The part of the OneID service (`marketloop.identity.service.IdentityService`) the profile uses."""

    def identifier(self, type_name: str, raw: str) -> oneid.Identifier:
        """The identifier as the graph holds it (normalised, hashed when protected); INVALID when not valid."""
        ...

    def resolve(self, identifier: oneid.Identifier) -> str | None:
        """The OneID holding `identifier`, or None."""
        ...

    def person(self, one_id: str) -> OneIdPerson:
        """The live person of `one_id`, with its identifiers."""
        ...


class OneIdLookup:
    """`IdentityLookup` through the OneID graph: identifier → OneID → the cust_no that OneID holds.

    An identifier the graph does not know goes to `fallback` (data loaded
    before OneID was wired). Identities list the OneID and its identifiers,
    except protected types (the graph holds only their keyed hash).
    """

    def __init__(self, graph: OneIdGraph, fallback: IdentityLookup | None = None) -> None:
        self._graph = graph
        self._fallback = fallback

    def customer_of(self, kind: str, value: str) -> str | None:
        one_id = self._graph.resolve(self._graph.identifier(kind, value))
        found = self._cust_no(one_id) if one_id is not None else None
        if found is None and self._fallback is not None:
            return self._fallback.customer_of(kind, value)
        return found

    def identities_of(self, cust_no: str) -> list[Identity]:
        one_id = self._graph.resolve(oneid.Identifier(CUST_NO, cust_no))
        if one_id is None:
            return self._fallback.identities_of(cust_no) if self._fallback is not None else []
        person = self._graph.person(one_id)
        listed = [Identity(type="one_id", value=person.one_id)]
        listed += [
            Identity(type=i.type, value=i.value) for i in person.identifiers if i.type not in person.protected_types
        ]
        return listed

    def _cust_no(self, one_id: str) -> str | None:
        numbers = sorted(i.value for i in self._graph.person(one_id).identifiers if i.type == CUST_NO)
        return numbers[0] if numbers else None


def parse_identifier(text: str) -> Identifier:
    """`phone:13800001234` → (phone, 13800001234); `C0001` → (None, C0001); an unknown prefix stays in the value."""
    value = text.strip()
    if not value or len(value) > MAX_IDENTIFIER:
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="customer.invalid-identifier",
            title="Not a customer identifier",
            detail=f"expected a customer number, phone or TYPE:VALUE of at most {MAX_IDENTIFIER} characters",
        )
    kind, sep, rest = value.partition(":")
    if sep and kind.lower() in IDENTIFIER_TYPES and rest.strip():
        return Identifier(type=ALIASES.get(kind.lower(), kind.lower()), value=rest.strip())
    return Identifier(type=None, value=value)


class CustomerResolver:
    """Finds the cust_no behind an identifier: customers table for cust_no and phone, else `IdentityLookup`."""

    def __init__(self, store: ProfileStore, cipher: FieldCipher, identities: IdentityLookup) -> None:
        self._store = store
        self._cipher = cipher
        self._identities = identities

    def resolve(self, identifier: Identifier) -> str | None:
        """The cust_no, or None when no customer has this identifier."""
        if identifier.type == CUST_NO:
            return identifier.value if self._store.customer_exists(identifier.value) else None
        if identifier.type == PHONE:
            return self.by_phone(identifier.value, strict=True)
        if identifier.type is not None:
            return self._identities.customer_of(identifier.type, identifier.value)
        if self._store.customer_exists(identifier.value):
            return identifier.value
        return self.by_phone(identifier.value, strict=False)

    def phone_hash(self, raw: str, *, strict: bool) -> str | None:
        """The keyed hash of a phone number; None (or, if `strict`, an error) when `raw` is not one."""
        phone = normalise_phone(raw)
        if phone is None:
            if strict:
                raise MarketloopError(
                    kind=ErrorKind.INVALID,
                    code="customer.invalid-phone",
                    title="Not a mainland mobile number",
                    detail=f"{raw!r}: expected 11 digits starting with 1, optionally with +86",
                )
            return None
        return self._cipher.keyed_hash(PHONE, phone)

    def by_phone(self, raw: str, *, strict: bool) -> str | None:
        hashed = self.phone_hash(raw, strict=strict)
        return self._store.customer_by_phone_hash(hashed) if hashed is not None else None
