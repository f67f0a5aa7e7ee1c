"""What a journey branch knows about a customer: the 360° profile's fields and the customer's tags.

`profile_facts` reads them through the profile service (personal fields stay
masked: a branch never needs a name or a phone number in clear). A customer
the bank does not know (an anonymous visitor) has no facts, so only `else`
branches match for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.journeys.walk import Facts
from marketloop.profiles.service import ProfileService


def profile_facts(profiles: ProfileService) -> Facts:
    """`{"profile": {field: value, …}, "tags": {tag: value, …}}` of a customer, `{}` when unknown."""

    def facts(customer: str) -> Mapping[str, Any]:
        try:
            found = profiles.profile(customer, timeline_limit=0)
        except MarketloopError as error:
            if error.kind is ErrorKind.NOT_FOUND:
                return {}
            raise
        fields: dict[str, Any] = {}
        for topic in (found.natural, found.assets, found.liabilities, found.risk, found.behaviour, found.value):
            fields |= dict(topic)
        return {"profile": fields, "tags": {tag.tag: tag.value for tag in found.tags}}

    return facts
