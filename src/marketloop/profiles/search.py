"""Customer search (客户查询): by customer number, phone, name prefix and simple filters, masked results.

Names are stored encrypted; only the family name (`name_prefix`) is in clear,
as the bank data model prescribes. A name prefix no longer than a family
name is matched on that column alone. A longer one ("张三") is matched by
decrypting the candidates whose family name starts it, at most
`NAME_CHECK_LIMIT` of them: beyond that the search asks for a narrower query
(a filter such as city or branch) instead of decrypting half the bank.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from marketloop.core.bank import VIP_THRESHOLDS, RiskTolerance
from marketloop.core.errors import ErrorKind, FieldError, MarketloopError
from marketloop.core.identifiers import mask_name, mask_phone
from marketloop.core.personal import NAME, PHONE
from marketloop.core.scope import EVERYTHING, Scope
from marketloop.ports.profiles import ProfileFilter, ProfileRow, ProfileStore
from marketloop.profiles.lookup import CustomerResolver
from marketloop.security.crypto import FieldCipher

MAX_LIMIT = 200
MAX_OFFSET = 100_000
MAX_NAME = 20
NAME_CHECK_LIMIT = 10_000
VIP_LEVELS = frozenset(tier for _, tier in VIP_THRESHOLDS)
NAME_COLUMN, PHONE_COLUMN = NAME.encrypted or "name_enc", PHONE.encrypted or "phone_enc"  # also the cipher contexts


@dataclass(frozen=True, kw_only=True)
class SearchQuery:
    """What to search for; every given criterion must hold. Results are ordered by customer number."""

    cust_no: str | None = None
    phone: str | None = None
    name_prefix: str | None = None
    city: str | None = None
    vip_level: str | None = None
    risk_tolerance: str | None = None
    branch_id: str | None = None
    rm_id: str | None = None
    min_aum: float | None = None
    max_aum: float | None = None
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True, kw_only=True)
class CustomerHit:
    """One customer in a result list, personal fields masked unless revealed."""

    cust_no: str
    name: str | None
    phone: str | None
    city: str | None
    vip_level: str | None
    vip_tier: str | None
    risk_tolerance: str | None
    branch_id: str | None
    rm_id: str | None
    aum: float


@dataclass(frozen=True, kw_only=True)
class SearchResult:
    total: int
    limit: int
    offset: int
    items: list[CustomerHit]


def validate(query: SearchQuery) -> list[FieldError]:
    """Every problem with `query`, by field; empty when it can run."""
    problems: list[FieldError] = []
    if not 1 <= query.limit <= MAX_LIMIT:
        problems.append(FieldError(pointer="/limit", detail=f"must be between 1 and {MAX_LIMIT}"))
    if not 0 <= query.offset <= MAX_OFFSET:
        problems.append(FieldError(pointer="/offset", detail=f"must be between 0 and {MAX_OFFSET}"))
    if query.risk_tolerance is not None and query.risk_tolerance not in RiskTolerance.__members__:
        problems.append(FieldError(pointer="/risk_tolerance", detail="must be one of C1, C2, C3, C4, C5"))
    if query.vip_level is not None and query.vip_level not in VIP_LEVELS:
        problems.append(FieldError(pointer="/vip_level", detail=f"must be one of {', '.join(sorted(VIP_LEVELS))}"))
    if query.name_prefix is not None and not 0 < len(query.name_prefix.strip()) <= MAX_NAME:
        problems.append(FieldError(pointer="/name_prefix", detail=f"must be 1 to {MAX_NAME} characters"))
    if query.min_aum is not None and query.max_aum is not None and query.min_aum > query.max_aum:
        problems.append(FieldError(pointer="/min_aum", detail="must not exceed max_aum"))
    return problems


class CustomerSearch:
    """Runs a `SearchQuery` against the profile store and masks what it returns."""

    def __init__(self, store: ProfileStore, cipher: FieldCipher, resolver: CustomerResolver) -> None:
        self._store = store
        self._cipher = cipher
        self._resolver = resolver

    def search(self, query: SearchQuery, *, reveal: bool = False, scope: Scope = EVERYTHING) -> SearchResult:
        problems = validate(query)
        if problems:
            raise MarketloopError(
                kind=ErrorKind.INVALID, code="customer.invalid-search", title="The search is not valid", errors=problems
            )
        where = self._filter(query, scope)
        if where is None:
            return SearchResult(total=0, limit=query.limit, offset=query.offset, items=[])
        rows, total = self._store.search(where, limit=query.limit, offset=query.offset)
        items = [self._hit(row, reveal=reveal) for row in rows]
        return SearchResult(total=total, limit=query.limit, offset=query.offset, items=items)

    def _filter(self, query: SearchQuery, scope: Scope) -> ProfileFilter | None:
        """The store filter for `query`; None when it cannot match anyone (e.g. no name passes the check)."""
        phone_hash = self._resolver.phone_hash(query.phone, strict=True) if query.phone is not None else None
        where = ProfileFilter(
            cust_no=query.cust_no.strip() if query.cust_no else None,
            phone_hash=phone_hash,
            city=query.city,
            vip_level=query.vip_level,
            risk_tolerance=query.risk_tolerance,
            branch_id=query.branch_id,
            rm_id=query.rm_id,
            min_aum=query.min_aum,
            max_aum=query.max_aum,
            scope_branch_ids=tuple(sorted(scope.branch_ids)) if scope.branch_ids is not None else None,
            scope_rm_id=scope.rm_id,
        )
        if query.name_prefix is None:
            return where
        return self._with_name(where, query.name_prefix.strip())

    def _with_name(self, where: ProfileFilter, prefix: str) -> ProfileFilter | None:
        shorter = tuple(prefix[:n] for n in range(1, len(prefix)))
        checked: tuple[str, ...] = ()
        if shorter:
            candidates, total = self._store.search(
                _replace(where, family_names=shorter), limit=NAME_CHECK_LIMIT, offset=0
            )
            if total > NAME_CHECK_LIMIT:
                raise MarketloopError(
                    kind=ErrorKind.INVALID,
                    code="customer.search-too-broad",
                    title="The name search is too broad",
                    detail=(
                        f"{total} customers have a family name that {prefix!r} starts with; add a filter "
                        "(city, branch, RM, VIP level) or search by family name only"
                    ),
                )
            checked = tuple(row.cust_no for row in candidates if self._name(row).startswith(prefix))
        return _replace(where, family_name_prefix=prefix, named_cust_nos=checked)

    def _name(self, row: ProfileRow) -> str:
        return self._cipher.decrypt(row.name_enc, context=NAME_COLUMN) if row.name_enc else ""

    def _hit(self, row: ProfileRow, *, reveal: bool) -> CustomerHit:
        name = self._name(row) if row.name_enc else None
        phone = self._cipher.decrypt(row.phone_enc, context=PHONE_COLUMN) if row.phone_enc else None
        if not reveal:
            name = mask_name(name) if name is not None else None
            phone = mask_phone(phone) if phone is not None else None
        return CustomerHit(
            cust_no=row.cust_no,
            name=name,
            phone=phone,
            city=row.city,
            vip_level=row.vip_level,
            vip_tier=row.vip_tier,
            risk_tolerance=row.risk_tolerance,
            branch_id=row.branch_id,
            rm_id=row.rm_id,
            aum=row.aum,
        )


def _replace(where: ProfileFilter, **changes: object) -> ProfileFilter:
    return replace(where, **changes)  # type: ignore[arg-type]
