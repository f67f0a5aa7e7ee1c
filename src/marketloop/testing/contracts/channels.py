"""The contract of the `Channel` port, as tests that every channel adapter must pass.

A test module runs the suite by importing the tests and providing a `channel_case` fixture that
returns a `ChannelCase`: the adapter under test wired to its (fake or local) provider, and hooks
to make the provider fail (see `tests/contract/test_channels.py`):

    from marketloop.testing.contracts.channels import *  # noqa: F403
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from marketloop.core.consent import Purpose
from marketloop.ports.channels import Channel, ChannelError, DeliveryStatus, Touch

__all__ = [
    "ChannelCase",
    "test_a_provider_outage_is_retryable",
    "test_a_refusal_is_permanent",
    "test_garbage_is_not_a_receipt",
    "test_send_answers_a_provider_message_id",
    "test_the_idempotency_key_reaches_the_provider",
]


@dataclass(kw_only=True)
class ChannelCase:
    """An adapter and its provider; a hook left None means the provider cannot do that (the test is skipped)."""

    channel: Channel
    address: str
    outage: Callable[[], None] | None = None  # the next send meets a timeout / 5xx / 4xx SMTP answer
    refusal: Callable[[], None] | None = None  # the next send is refused for good
    received: Callable[[str], bool] | None = None  # whether the provider got the touch with this key


def touch(case: ChannelCase, key: str, body: str = "【示例银行】您的理财将于3日后到期。拒收请回复R") -> Touch:
    return Touch(
        idempotency_key=key,
        customer="C1",
        channel=case.channel.kind,
        purpose=Purpose.MARKETING,
        address=case.address,
        body=body,
        title="到期提醒",
        variables={"product": "稳享90天"},
        link="https://bank.example/w/1",
        campaign="contract",
        sender="rm_zhang",
    )


def test_send_answers_a_provider_message_id(channel_case: ChannelCase) -> None:
    result = channel_case.channel.send(touch(channel_case, "contract:1"))
    assert result.idempotency_key == "contract:1"
    assert result.provider_message_id
    assert result.status is DeliveryStatus.ACCEPTED
    assert result.parts >= 1


def test_the_idempotency_key_reaches_the_provider(channel_case: ChannelCase) -> None:
    if channel_case.received is None:
        pytest.skip("the provider's protocol has no field for an idempotency key")
    channel_case.channel.send(touch(channel_case, "contract:key"))
    assert channel_case.received("contract:key")
    assert not channel_case.received("contract:other")


def test_a_provider_outage_is_retryable(channel_case: ChannelCase) -> None:
    if channel_case.outage is None:
        pytest.skip("no provider to fail")
    channel_case.outage()
    with pytest.raises(ChannelError) as caught:
        channel_case.channel.send(touch(channel_case, "contract:outage"))
    assert caught.value.retryable
    assert caught.value.channel == channel_case.channel.name


def test_a_refusal_is_permanent(channel_case: ChannelCase) -> None:
    if channel_case.refusal is None:
        pytest.skip("the provider never refuses")
    channel_case.refusal()
    with pytest.raises(ChannelError) as caught:
        channel_case.channel.send(touch(channel_case, "contract:refused"))
    assert not caught.value.retryable


def test_garbage_is_not_a_receipt(channel_case: ChannelCase) -> None:
    with pytest.raises(ChannelError) as caught:
        channel_case.channel.parse_receipts(b"\x00 not a callback \xff")
    assert not caught.value.retryable
