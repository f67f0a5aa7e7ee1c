"""The OneID (统一身份) API: look a person up by any identifier, merge, unmerge, and read the history.

Reading needs `identity:read`; merging and unmerging (which moves a
person's events to another OneID) need `identity:write`, and the unmerge is
recorded with the user as its actor. A user with a data scope (an RM, a
branch) sees a person only when one of its customer numbers is inside that
scope; otherwise the answer is the same 404 as for an unknown one.

Identifiers are given by raw value (normalised and, for protected types,
hashed by the service) or, for protected types, by the keyed hash the API
shows (`hashed_value`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, model_validator

from marketloop.access.principal import Principal
from marketloop.api.auth import require
from marketloop.api.deps import container
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.identities import Conflict, HistoryRecord, Identifier, LinkOutcome, MergeRecord
from marketloop.identity.service import IdentityService, Person

router = APIRouter(prefix="/v1/identities", tags=["identity"])


def identity_service(request: Request) -> IdentityService:
    return container(request).identity


Identity = Annotated[IdentityService, Depends(identity_service)]
Reader = Annotated[Principal, require("identity:read")]
Writer = Annotated[Principal, require("identity:write")]


def _visible(request: Request, user: Principal, person: Person) -> Person:
    """`person`, when the user's scope holds one of its customers; else the 404 of an unknown OneID."""
    access = container(request).access
    customers = [i.value for i in person.identifiers if i.type == "cust_no"]
    if user.scope.everything or any(access.customer_in_scope(user.scope, c) for c in customers):
        return person
    raise MarketloopError(kind=ErrorKind.NOT_FOUND, code="identity.unknown-one-id", title="No such OneID")


class IdentifierIn(BaseModel):
    type: str = Field(description="Identifier type, e.g. cust_no, phone, user_id.")
    value: str | None = Field(default=None, description="The raw value; normalised (and hashed) by the server.")
    hashed_value: str | None = Field(default=None, description="For protected types: the keyed hash instead.")

    @model_validator(mode="after")
    def _one_of(self) -> IdentifierIn:
        if (self.value is None) == (self.hashed_value is None):
            raise ValueError("give exactly one of value and hashed_value")
        return self


class IdentifierOut(BaseModel):
    type: str
    value: str
    protected: bool = Field(description="True when `value` is the keyed hash of the real value.")


class PersonOut(BaseModel):
    one_id: str
    created_at: datetime
    identifiers: list[IdentifierOut]
    merged: list[str] = Field(description="OneIDs merged into this one; they resolve to it.")


class MergeIn(BaseModel):
    identifiers: list[IdentifierIn] = Field(min_length=1, max_length=100)
    reason: str = Field(default="api", max_length=200)


class ConflictOut(BaseModel):
    at: datetime
    reason: str
    id_type: str
    one_ids: list[str]
    detail: str
    source: str


class MergeOut(BaseModel):
    one_id: str | None = Field(description="The OneID of the highest-priority identifier afterwards.")
    created: str | None
    absorbed: list[str]
    attached: list[IdentifierOut]


class UnmergeIn(BaseModel):
    identifiers: list[IdentifierIn] = Field(min_length=1, max_length=1000)


class UnmergeOut(BaseModel):
    from_one_id: str
    one_id: str
    moved: list[IdentifierOut]
    revived: bool
    events_reattributed: int


class HistoryOut(BaseModel):
    at: datetime
    kind: str
    one_id: str = Field(description="merge: the survivor; unmerge: the OneID split")
    other_one_id: str = Field(description="merge: the OneID merged away; unmerge: where the identifiers went")
    identifiers: list[IdentifierOut]
    reason: str | None = None
    source: str | None = None
    actor: str | None = None


class PersonHistoryOut(BaseModel):
    one_id: str
    history: list[HistoryOut]
    conflicts: list[ConflictOut]


def _identifier_in(identity: IdentityService, given: IdentifierIn) -> Identifier:
    if given.hashed_value is not None:
        return identity.hashed(given.type, given.hashed_value)
    return identity.identifier(given.type, given.value or "")


def _out(identity: IdentityService, identifiers: tuple[Identifier, ...]) -> list[IdentifierOut]:
    return [
        IdentifierOut(type=i.type, value=i.value, protected=identity.types.get(i.type).protected) for i in identifiers
    ]


def _person(identity: IdentityService, person: Person) -> PersonOut:
    identifiers = _out(identity, person.identifiers)
    return PersonOut(
        one_id=person.one_id, created_at=person.created_at, identifiers=identifiers, merged=list(person.merged)
    )


def _conflict(conflict: Conflict) -> ConflictOut:
    return ConflictOut(
        at=conflict.at,
        reason=conflict.reason.value,
        id_type=conflict.id_type,
        one_ids=list(conflict.one_ids),
        detail=conflict.detail,
        source=conflict.source,
    )


def _history(identity: IdentityService, record: HistoryRecord) -> HistoryOut:
    identifiers = _out(identity, record.identifiers)
    if isinstance(record, MergeRecord):
        return HistoryOut(
            at=record.at,
            kind="merge",
            one_id=record.survivor,
            other_one_id=record.absorbed,
            identifiers=identifiers,
            reason=record.reason,
            source=record.source,
        )
    return HistoryOut(
        at=record.at,
        kind="unmerge",
        one_id=record.from_one_id,
        other_one_id=record.to_one_id,
        identifiers=identifiers,
        actor=record.actor,
    )


def _merge_out(identity: IdentityService, outcome: LinkOutcome) -> MergeOut:
    return MergeOut(
        one_id=outcome.one_id,
        created=outcome.created,
        absorbed=list(outcome.absorbed),
        attached=_out(identity, outcome.attached),
    )


# Registered before `/{id_type}/{value}`, which would otherwise match it.
@router.get("/{one_id}/history", summary="Merges, unmerges and refused merges of a person, oldest first")
def history(
    one_id: str,
    identity: Identity,
    user: Reader,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> PersonHistoryOut:
    person = _visible(request, user, identity.person(one_id))
    records, conflicts = identity.history(one_id, limit=limit)
    return PersonHistoryOut(
        one_id=person.one_id,
        history=[_history(identity, r) for r in records],
        conflicts=[_conflict(c) for c in conflicts],
    )


@router.get("/{id_type}/{value}", summary="The OneID of an identifier, with all its identifiers")
def show(id_type: str, value: str, identity: Identity, user: Reader, request: Request) -> PersonOut:
    return _person(identity, _visible(request, user, identity.show(identity.identifier(id_type, value))))


@router.post(
    "/merge",
    summary="Link identifiers into one OneID; all or nothing",
    responses={409: {"description": "The identity rules refuse the merge (recorded as a conflict)"}},
)
def merge(body: MergeIn, identity: Identity, user: Writer) -> MergeOut:
    identifiers = [_identifier_in(identity, i) for i in body.identifiers]
    return _merge_out(identity, identity.merge(identifiers, reason=body.reason, source="api"))


@router.post("/{one_id}/unmerge", summary="Split identifiers off a OneID; their events move with them")
def unmerge(one_id: str, body: UnmergeIn, identity: Identity, user: Writer) -> UnmergeOut:
    identifiers = [_identifier_in(identity, i) for i in body.identifiers]
    result = identity.unmerge(one_id, identifiers, actor=user.actor)
    outcome = result.outcome
    return UnmergeOut(
        from_one_id=outcome.from_one_id,
        one_id=outcome.one_id,
        moved=_out(identity, outcome.moved),
        revived=outcome.revived,
        events_reattributed=result.events_reattributed,
    )
