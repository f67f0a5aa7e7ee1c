"""The keyword arguments of `holds(…)` and `transacted(…)` in the text form, checked one by one."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from marketloop.segments import ast as a
from marketloop.segments.ast import Position, RelativeDate
from marketloop.segments.errors import Code, fail

_STRINGS = {"product_type", "product_code", "risk_level", "direction", "counterparty_type", "channel", "category"}
_NUMBERS = {"min_balance", "max_balance", "min_amount", "max_amount", "sum_at_least"}
_DURATIONS = {"maturing_within", "within"}
HOLDS_ARGUMENTS = ("product_type", "product_code", "risk_level", "min_balance", "max_balance", "maturing_within")
TRANSACTED_ARGUMENTS = (
    "direction",
    "counterparty_type",
    "channel",
    "category",
    "min_amount",
    "max_amount",
    "at_least",
    "sum_at_least",
    "within",
)


class Arguments:
    """`name = value` pairs with the position of each value."""

    def __init__(self, found: dict[str, tuple[Any, Position]], here: Position) -> None:
        self._found = found
        self._here = here

    def _only(self, allowed: tuple[str, ...], what: str) -> None:
        for key, (_, position) in self._found.items():
            if key not in allowed:
                raise fail(Code.SYNTAX, f"{what}(…) has no argument {key!r}; use {', '.join(allowed)}", position)

    def _get(self, key: str) -> Any:
        item, position = self._found.get(key, (None, self._here))
        if item is None:
            return None
        if key in _STRINGS and not isinstance(item, str):
            raise fail(Code.WRONG_TYPE, f"{key} is a string", position)
        if key in _NUMBERS and (isinstance(item, bool | str | RelativeDate | timedelta)):
            raise fail(Code.WRONG_TYPE, f"{key} is a number", position)
        if key in _DURATIONS and not isinstance(item, timedelta):
            raise fail(Code.WRONG_TYPE, f"{key} is a duration such as 30d", position)
        if key == "at_least" and (isinstance(item, bool) or not isinstance(item, int)):
            raise fail(Code.WRONG_TYPE, "at_least is a whole number", position)
        return item

    def _spots(self) -> a.Spots:
        return tuple((key, position) for key, (_, position) in self._found.items())

    def holds(self) -> a.Holds:
        self._only(HOLDS_ARGUMENTS, "holds")
        return a.Holds(
            product_type=self._get("product_type"),
            product_code=self._get("product_code"),
            risk_level=self._get("risk_level"),
            min_balance=_number(self._get("min_balance")),
            max_balance=_number(self._get("max_balance")),
            maturing_within=self._get("maturing_within"),
            pos=self._here,
            spots=self._spots(),
        )

    def transacted(self) -> a.Transacted:
        self._only(TRANSACTED_ARGUMENTS, "transacted")
        within = self._get("within")
        if within is None:
            raise fail(Code.SYNTAX, "transacted(…) needs within = a duration such as 30d", self._here)
        at_least = self._get("at_least")
        return a.Transacted(
            direction=self._get("direction"),
            counterparty_type=self._get("counterparty_type"),
            channel=self._get("channel"),
            category=self._get("category"),
            min_amount=_number(self._get("min_amount")),
            max_amount=_number(self._get("max_amount")),
            within=within,
            at_least=1 if at_least is None else at_least,
            sum_at_least=_number(self._get("sum_at_least")),
            pos=self._here,
            spots=self._spots(),
        )


def _number(item: Any) -> int | Decimal | None:
    return item if item is None or isinstance(item, int | Decimal) else Decimal(str(item))
