"""OneID (统一身份 / ID-Mapping): identifier types, identifiers, and the records of the identity graph.

Owns what an identifier *is* - its type, priority, uniqueness and protection,
and how a raw value is normalised - and the immutable records the graph
produces (merges, unmerges, conflicts) and a store persists. The graph's
rules live in `marketloop.core.identity_graph`.

Pure: no I/O, no clock; times come in as arguments.

Priority: higher wins. An event belongs to the OneID of its highest-priority
identifier. Unique types: a OneID holds at most one value of each, so two
different customer numbers are never one person.

Protection: `hash` and `encrypt_and_hash` types enter the graph only as a
keyed hash (`FieldCipher.keyed_hash(type, normalised value)`); the graph and
its tables never see the plain value. For `encrypt_and_hash` types (the
phone) the encrypted value lives with the customer (`customers.phone_enc`),
and `customers.phone_hash` equals the graph's value, so the two join.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.identifiers import normalise_email, normalise_id_card, normalise_phone

KEY_SEPARATOR = "\x1f"
MAX_VALUE_LENGTH = 256
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class Protection(StrEnum):
    """How an identifier's value is kept at rest."""

    NONE = "none"
    HASH = "hash"  # only the keyed hash is stored anywhere
    ENCRYPT_AND_HASH = "encrypt_and_hash"  # keyed hash in the graph; ciphertext with the customer


class Normaliser(StrEnum):
    """How a raw value becomes the one spelling the graph compares."""

    TEXT = "text"  # trimmed
    PHONE = "phone"  # 11-digit mainland mobile, +86 / spaces / dashes removed
    ID_CARD = "id_card"  # 18-character resident ID with a valid check digit, upper-case X
    EMAIL = "email"  # lower-case, must look like an address
    WECHAT_OPENID = "wechat_openid"  # "{appid}:{openid}": an openid is only unique within one app


@dataclass(frozen=True, kw_only=True)
class IdentifierType:
    """One kind of identifier, e.g. the customer number or the phone."""

    name: str
    priority: int  # higher wins
    unique: bool  # at most one value per OneID
    protection: Protection = Protection.NONE
    normaliser: Normaliser = Normaliser.TEXT
    description: str = ""

    @property
    def protected(self) -> bool:
        return self.protection is not Protection.NONE


def _t(name: str, priority: int, unique: bool, protection: Protection, norm: Normaliser, doc: str) -> IdentifierType:
    return IdentifierType(
        name=name, priority=priority, unique=unique, protection=protection, normaliser=norm, description=doc
    )


_P, _N = Protection, Normaliser
DEFAULT_TYPES: tuple[IdentifierType, ...] = (
    _t("cust_no", 100, True, _P.NONE, _N.TEXT, "customer number from the core system (客户号)"),
    _t("id_card", 90, True, _P.HASH, _N.ID_CARD, "resident ID number (身份证号), kept only as a keyed hash"),
    _t("user_id", 80, True, _P.NONE, _N.TEXT, "login id of the app / online banking"),
    _t("wechat_unionid", 70, True, _P.NONE, _N.TEXT, "WeChat unionid, one per person across the bank's apps"),
    _t("phone", 60, False, _P.ENCRYPT_AND_HASH, _N.PHONE, "mobile number; not unique: people change numbers"),
    _t("email", 50, False, _P.HASH, _N.EMAIL, "email address"),
    _t("device_id", 40, False, _P.NONE, _N.TEXT, "device id (IDFV, Android id, ...)"),
    _t("wechat_openid", 30, False, _P.NONE, _N.WECHAT_OPENID, "WeChat openid, as appid:openid"),
    _t("anonymous_id", 10, False, _P.NONE, _N.TEXT, "SDK-generated id before login (distinct_id)"),
)


def invalid(code: str, title: str, detail: str = "") -> MarketloopError:
    return MarketloopError(kind=ErrorKind.INVALID, code=f"identity.{code}", title=title, detail=detail)


def _text(raw: str) -> str | None:
    value = raw.strip()
    return value if value else None


def _openid(raw: str) -> str | None:
    appid, _, openid = raw.strip().partition(":")
    return f"{appid.strip()}:{openid.strip()}" if appid.strip() and openid.strip() else None


_NORMALISERS = {
    Normaliser.TEXT: _text,
    Normaliser.PHONE: normalise_phone,
    Normaliser.ID_CARD: normalise_id_card,
    Normaliser.EMAIL: normalise_email,
    Normaliser.WECHAT_OPENID: _openid,
}


def wechat_openid_value(appid: str, openid: str) -> str:
    """The `wechat_openid` value of `openid` in the app `appid`."""
    return f"{appid}:{openid}"


class Identifier(NamedTuple):
    """One identifier: a type name and a normalised (for protected types: hashed) value.

    A named tuple: the loader builds millions of them, and a tuple is the cheapest immutable, ordered key.
    """

    type: str
    value: str

    @property
    def key(self) -> str:
        """`type` and `value` in one string: how the graph keys its maps."""
        return f"{self.type}{KEY_SEPARATOR}{self.value}"

    @classmethod
    def from_key(cls, key: str) -> Identifier:
        type_, _, value = key.partition(KEY_SEPARATOR)
        return tuple.__new__(cls, (type_, value))  # the generated keyword `__new__` is slow on hot paths


class IdentifierTypes:
    """The configured identifier types, by name: the default set plus custom ones."""

    def __init__(self, types: Iterable[IdentifierType] = DEFAULT_TYPES) -> None:
        self._types: dict[str, IdentifierType] = {}
        for type_ in types:
            if not _TYPE_NAME.match(type_.name):
                raise ValueError(f"identifier type name {type_.name!r} must match {_TYPE_NAME.pattern}")
            if type_.name in self._types:
                raise ValueError(f"identifier type {type_.name!r} is defined twice")
            self._types[type_.name] = type_
        self._priority = {name: t.priority for name, t in self._types.items()}
        self._rank = {name: -priority for name, priority in self._priority.items()}

    def __iter__(self) -> Iterator[IdentifierType]:
        return iter(self._types.values())

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def get(self, name: str) -> IdentifierType:
        """The type called `name`; an INVALID error naming the known types when there is none."""
        found = self._types.get(name)
        if found is None:
            raise invalid("unknown-type", "Unknown identifier type", f"{name!r} is not one of {sorted(self._types)}")
        return found

    def priority(self, name: str) -> int:
        return self._priority.get(name, 0)

    def sort_keys(self, keys: Iterable[str]) -> list[str]:
        """Distinct identifier keys, highest priority first; ties by type name, then value."""
        rank = self._rank
        return sorted(set(keys), key=lambda k: (rank.get(k.partition(KEY_SEPARATOR)[0], 0), k))

    def sort_given(self, given: Mapping[str, Identifier]) -> list[str]:
        """`sort_keys(given)` for keys whose identifiers are at hand (key -> identifier): no key is split."""
        if len(given) < 2:
            return list(given)
        rank = self._rank
        return [k for _, k in sorted([(rank.get(i[0], 0), k) for k, i in given.items()])]  # keys are distinct

    def anchor(self, identifiers: Sequence[Identifier]) -> Identifier:
        """The first of non-empty `identifiers` in the order of `sort_keys`: the one an event belongs to."""
        if len(identifiers) == 1:
            return identifiers[0]
        rank = self._rank
        return min(identifiers, key=lambda i: (rank.get(i[0], 0), i[0], i[1]))

    def normalise(self, type_name: str, raw: str) -> str | None:
        """The normalised value of `raw` for this type, or None when it is not a valid one."""
        type_ = self.get(type_name)
        if len(raw) > MAX_VALUE_LENGTH or KEY_SEPARATOR in raw:
            return None
        return _NORMALISERS[type_.normaliser](raw)


@dataclass(frozen=True, kw_only=True)
class Origin:
    """When a OneID was issued, and the identifier it was issued for."""

    created_at: datetime
    creator: Identifier


@dataclass(frozen=True, kw_only=True)
class MergeRecord:
    """`absorbed` joined `survivor` (the older OneID); `absorbed` redirects to it from now on."""

    at: datetime
    survivor: str
    absorbed: str
    reason: str  # why: an event type, "import", "api"
    source: str  # where from: source id / message id, import file, user
    identifiers: tuple[Identifier, ...]  # the link that caused it


@dataclass(frozen=True, kw_only=True)
class UnmergeRecord:
    """`identifiers` were split off `from_one_id` into `to_one_id` by `actor`; the two stay separated."""

    at: datetime
    from_one_id: str
    to_one_id: str
    identifiers: tuple[Identifier, ...]
    actor: str
    revived: bool  # `to_one_id` is an earlier merged-away OneID brought back


HistoryRecord = MergeRecord | UnmergeRecord


class ConflictReason(StrEnum):
    INPUT_CONTRADICTS = "input_contradicts"  # the link itself holds two values of a unique type
    UNIQUE_TYPE = "unique_type"  # joining would put two values of a unique type in one OneID
    SEPARATED = "separated"  # an authorised user split these apart (unmerge); they stay apart


@dataclass(frozen=True, kw_only=True)
class Conflict:
    """A merge the rules refused, with why."""

    at: datetime
    reason: ConflictReason
    id_type: str  # the unique type in question ("" for SEPARATED)
    values: tuple[str, ...]  # its clashing values, sorted
    one_ids: tuple[str, ...]  # the OneIDs that would have merged, sorted
    identifiers: tuple[Identifier, ...]  # the link's input
    source: str
    detail: str

    @property
    def key(self) -> str:
        """Equal for repeats of the same refusal, so a shared device does not record one per event."""
        text = "\x1e".join((self.reason, self.id_type, *self.values, "", *self.one_ids))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, kw_only=True)
class Reattribution:
    """After an unmerge: loaded events of `one_ids` resolved by a `moved` identifier now belong to `to_one_id`.

    Events of the revived OneID (`to_one_id`, when it was merged away before)
    resolved by an identifier that did not move go back to `rest_one_id`.
    """

    one_ids: tuple[str, ...]
    moved: tuple[Identifier, ...]
    to_one_id: str
    rest_one_id: str


class IdentityRow(NamedTuple):
    """Where an identifier belongs now. `first_seen` and `source` are None when only the OneID changed.

    A named tuple: a large import or merge writes one per identifier.
    """

    identifier: Identifier
    one_id: str
    first_seen: datetime | None
    source: str | None


@dataclass(frozen=True, kw_only=True)
class OneIdRow:
    one_id: str
    origin: Origin


@dataclass(frozen=True, kw_only=True)
class Redirect:
    from_one_id: str
    to_one_id: str
    at: datetime


@dataclass(frozen=True, kw_only=True)
class IdentityChanges:
    """What the graph changed since it was last persisted; a store writes it in one transaction."""

    identities: tuple[IdentityRow, ...] = ()
    one_ids: tuple[OneIdRow, ...] = ()
    redirects: tuple[Redirect, ...] = ()
    removed_redirects: tuple[str, ...] = ()  # revived OneIDs: live again
    history: tuple[HistoryRecord, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    reattributions: tuple[Reattribution, ...] = ()

    def __bool__(self) -> bool:
        return any(
            (
                self.identities,
                self.one_ids,
                self.redirects,
                self.removed_redirects,
                self.history,
                self.conflicts,
                self.reattributions,
            )
        )


@dataclass(frozen=True, kw_only=True)
class IdentitySnapshot:
    """Everything the graph needs to start: what a store loads.

    Identifiers come as two parallel sequences (a million customers make
    millions of rows: no object per row): `Identifier.key`s and their OneIDs.
    `origins` are (OneID, created_at, creator key); `separations` are the
    (from, to) OneID pairs of every unmerge, as issued.
    """

    identity_keys: Sequence[str] = ()
    identity_one_ids: Sequence[str] = ()
    origins: Sequence[tuple[str, datetime, str]] = ()
    redirects: Sequence[tuple[str, str]] = ()
    separations: Sequence[tuple[str, str]] = ()
    conflict_keys: Sequence[str] = ()


@dataclass(frozen=True, kw_only=True)
class LinkOutcome:
    """What one link did. `one_id` is the OneID of the link's highest-priority identifier afterwards."""

    one_id: str | None
    created: str | None = None
    absorbed: tuple[str, ...] = ()
    attached: tuple[Identifier, ...] = ()
    conflicts: tuple[Conflict, ...] = ()


@dataclass(frozen=True, kw_only=True)
class UnmergeOutcome:
    from_one_id: str
    one_id: str
    moved: tuple[Identifier, ...]
    revived: bool
