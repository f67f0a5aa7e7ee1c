"""Static tag values set one customer at a time (a journey's update step): idempotent, bad input refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.tags import TagCategory, TagKind
from marketloop.tags.definitions import TagDraft

if TYPE_CHECKING:
    from conftest import Bank


def _static(bank: Bank, name: str) -> None:
    bank.service.create(
        TagDraft(name=name, title=name, category=TagCategory.VALUE, definition=None, kind=TagKind.STATIC)
    )


def test_a_static_value_is_set_once_and_removed(bank: Bank) -> None:
    _static(bank, "journey_vip")
    assert bank.service.assign("journey_vip", "A", "gold") is True
    assert bank.service.assign("journey_vip", "A", "gold") is False  # a repeated update changes nothing
    assert {(v.tag, v.value) for v in bank.service.values_of("A")} >= {("journey_vip", "gold")}
    assert bank.service.assign("journey_vip", "A", None) is True
    assert "journey_vip" not in {v.tag for v in bank.service.values_of("A")}
    assert bank.service.assign("journey_vip", "A", None) is False


def test_only_static_tags_of_known_customers_are_assigned(bank: Bank) -> None:
    _static(bank, "journey_vip")
    bank.service.create(
        TagDraft(name="shanghai", title="上海", category=TagCategory.VALUE, definition={"when": 'city = "上海"'})
    )
    cases = [("shanghai", "A", "tags.not-static"), ("journey_vip", "NOBODY", "tags.unknown-customer")]
    for name, customer, code in cases:
        with pytest.raises(MarketloopError) as refused:
            bank.service.assign(name, customer, "true")
        assert (refused.value.kind, refused.value.code) == (ErrorKind.INVALID, code)
    with pytest.raises(MarketloopError) as unknown:
        bank.service.assign("no_such_tag", "A", "true")
    assert unknown.value.kind is ErrorKind.NOT_FOUND
