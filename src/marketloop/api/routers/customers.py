"""The customer API: the 360° profile (客户360视图), the timeline and customer search (客户查询).

`{identifier}` is any identifier of the customer: `TYPE:VALUE` (`phone:13800001234`,
`user_id:u-1`, `device_id:abc`, `wechat_openid:appid:openid`, …) or a bare
value, tried as a customer number, then as a phone. An unknown customer is a
404 problem.

Reading needs `customers:read`. Personal fields (name, phone) are masked
unless the request asks `reveal=true` and the caller has `customers:reveal`
(asking without it is a 403).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from marketloop.access.principal import Principal
from marketloop.api.auth import require
from marketloop.api.deps import container
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.profiles.search import MAX_LIMIT, MAX_OFFSET, SearchQuery, SearchResult
from marketloop.profiles.service import (
    MAX_TIMELINE_LIMIT,
    MAX_TIMELINE_OFFSET,
    CustomerProfile,
    ProfileService,
    TimelinePage,
)


def profile_service(request: Request) -> ProfileService:
    return container(request).profiles


Profiles = Annotated[ProfileService, Depends(profile_service)]
TimelineLimit = Annotated[int, Query(ge=0, le=MAX_TIMELINE_LIMIT, description="Timeline events per page.")]
TimelineOffset = Annotated[int, Query(ge=0, le=MAX_TIMELINE_OFFSET, description="Timeline events to skip.")]
Text = Annotated[str | None, Query(max_length=64)]
Reader = Annotated[Principal, require("customers:read")]
Reveal = Annotated[bool, Query(description="Show names and phones in clear; needs customers:reveal.")]

router = APIRouter(prefix="/v1", tags=["customers"])


def _json(value: object) -> Response:
    return Response(msgspec.json.encode(value), media_type="application/json")


def _may_reveal(user: Principal, reveal: bool) -> bool:
    if reveal and not user.may("customers:reveal"):
        raise MarketloopError(
            kind=ErrorKind.FORBIDDEN,
            code="auth.forbidden",
            title="You may not see personal fields in clear",
            detail="reveal=true needs customers:reveal",
        )
    return reveal


@router.get(
    "/customers/{identifier}/profile",
    summary="A customer's 360° profile (客户360视图), by any identifier",
    response_model=CustomerProfile,
)
def get_profile(
    identifier: str,
    profiles: Profiles,
    user: Reader,
    timeline_limit: TimelineLimit = 20,
    timeline_offset: TimelineOffset = 0,
    reveal: Reveal = False,
) -> Response:
    found = profiles.profile(
        identifier,
        reveal=_may_reveal(user, reveal),
        timeline_limit=timeline_limit,
        timeline_offset=timeline_offset,
        scope=user.scope,
    )
    return _json(found)


@router.get(
    "/customers/{identifier}/timeline",
    summary="A customer's latest events, newest first",
    response_model=TimelinePage,
)
def get_timeline(
    identifier: str, profiles: Profiles, user: Reader, limit: TimelineLimit = 20, offset: TimelineOffset = 0
) -> Response:
    return _json(profiles.timeline(identifier, limit=limit, offset=offset, scope=user.scope))


@router.get(
    "/customers", summary="Search customers (客户查询), masked, by customer number", response_model=SearchResult
)
def search_customers(
    profiles: Profiles,
    user: Reader,
    cust_no: Text = None,
    phone: Text = None,
    name_prefix: Annotated[str | None, Query(max_length=20, description="Start of the name, e.g. 张 or 欧阳")] = None,
    city: Text = None,
    vip_level: Text = None,
    risk_tolerance: Text = None,
    branch_id: Text = None,
    rm_id: Text = None,
    min_aum: Annotated[float | None, Query(ge=0)] = None,
    max_aum: Annotated[float | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    reveal: Reveal = False,
) -> Response:
    query = SearchQuery(
        cust_no=cust_no,
        phone=phone,
        name_prefix=name_prefix,
        city=city,
        vip_level=vip_level,
        risk_tolerance=risk_tolerance,
        branch_id=branch_id,
        rm_id=rm_id,
        min_aum=min_aum,
        max_aum=max_aum,
        limit=limit,
        offset=offset,
    )
    return _json(profiles.search(query, reveal=_may_reveal(user, reveal), scope=user.scope))
