"""The send service over the in-memory fakes: idempotency, retries, policy gates, fallback, receipts, preference."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import ConsentStatus, Purpose
from marketloop.core.errors import MarketloopError
from marketloop.journeys.channels.fallback import Done, FallbackPlan, Wait, Wave
from marketloop.journeys.channels.ratelimit import RateLimiter
from marketloop.journeys.channels.registry import ChannelRegistry, ConfiguredChannel
from marketloop.journeys.channels.sending import Message, SendStatus
from marketloop.journeys.channels.service import SendService
from marketloop.journeys.policy.rules import Budget, Cap, Period
from marketloop.journeys.policy.service import PolicyQuery
from marketloop.ports.channels import DeliveryStatus, SendResult, Touch
from marketloop.ports.contact_policy import ListEntry
from marketloop.testing.channels import InMemoryChannel

from .conftest import World, request


def test_a_send_reaches_the_channel_once_however_often_it_is_retried(world: World) -> None:
    first = world.sends.send(request())
    again = world.sends.send(request())
    assert first.status is SendStatus.SENT
    assert first.provider_message_id == "push-1"
    assert again.status is SendStatus.DUPLICATE
    assert again.provider_message_id == "push-1"
    assert [t.body for t in world.push.sent] == ["张先生您好，您关注的存款产品今日可预约。"]
    assert world.push.calls == 1
    assert len(world.history.records) == 1  # the retry made no second decision


def test_missing_content_variables_are_a_clear_error_and_nothing_is_decided(world: World) -> None:
    with pytest.raises(MarketloopError) as caught:
        world.sends.send(request(message=Message(text="{name}，您的{product}将于{date}到期", variables={"name": "张"})))
    assert caught.value.code == "content.missing-variables"
    assert [e.pointer for e in caught.value.errors] == [
        "/message/text/variables/product",
        "/message/text/variables/date",
    ]
    assert world.history.records == []
    assert world.push.sent == []


def test_a_gateway_error_is_retried_with_backoff_then_dead_lettered(world: World) -> None:
    world.push.fail_next(retryable=True, times=5)
    outcomes = []
    for _ in range(5):
        outcome = world.sends.send(request())
        outcomes.append(outcome)
        if outcome.retry_at is not None:
            early = world.sends.send(request())  # before retry_at: nothing is sent
            assert early.status is SendStatus.RETRYING
            world.clock.advance(outcome.retry_at - world.clock.now())
    assert [o.status for o in outcomes] == [SendStatus.RETRYING] * 4 + [SendStatus.DEAD]
    assert world.push.calls == 5
    assert world.push.sent == []
    assert [d.idempotency_key for d in world.ledger.list(status=DeliveryStatus.DEAD)] == ["j1:v1:push:C1"]
    # a dead touch does not count against the caps: the day's two marketing touches are still free
    decision = outcomes[-1].decision
    assert decision is not None
    assert decision.id is not None
    assert world.policy.still_active(decision.id) is False


def test_backoff_doubles_per_attempt(world: World) -> None:
    world.push.fail_next(retryable=True, times=3)
    waits = []
    for _ in range(3):
        outcome = world.sends.send(request())
        assert outcome.retry_at is not None
        waits.append(outcome.retry_at - world.clock.now())
        world.clock.advance(waits[-1])
    assert waits == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    assert world.sends.send(request()).status is SendStatus.SENT


def test_a_permanent_refusal_fails_at_once(world: World) -> None:
    world.push.fail_next(retryable=False, message="invalid token")
    outcome = world.sends.send(request())
    assert outcome.status is SendStatus.FAILED
    assert "invalid token" in outcome.reason
    assert world.sends.send(request()).status is SendStatus.FAILED  # and stays failed
    assert world.push.calls == 1


def test_consent_is_checked_at_send_time_even_for_a_deferred_touch(world: World) -> None:
    world.clock.advance(timedelta(hours=13))  # 23:00 in Shanghai
    deferred = world.sends.send(request())
    assert deferred.status is SendStatus.DEFERRED
    assert deferred.retry_at is not None
    assert deferred.retry_at == datetime(2026, 1, 6, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    world.consent.record("C1", ChannelKind.PUSH, Purpose.MARKETING, ConsentStatus.WITHDRAWN, source="app_settings")
    world.clock.advance(deferred.retry_at - world.clock.now())
    outcome = world.sends.send(request())
    assert outcome.status is SendStatus.SUPPRESSED
    assert outcome.code == "consent"
    assert world.push.sent == []


def test_deferred_touch_is_sent_when_due(world: World) -> None:
    world.clock.advance(timedelta(hours=13))
    deferred = world.sends.send(request())
    assert deferred.retry_at is not None
    assert world.sends.send(request()).status is SendStatus.DEFERRED  # not yet
    world.clock.advance(deferred.retry_at - world.clock.now())
    assert world.sends.send(request()).status is SendStatus.SENT
    assert len(world.history.records) == 1


def test_lists_compliance_and_suitability_suppress_with_their_reason(world: World) -> None:
    world.lists.add(ListEntry(list_name="dnd", customer="C2", reason="客户要求", added_at=world.clock.now()))
    world.grant("C2", ChannelKind.PUSH)
    on_list = world.sends.send(request("k-dnd", customer="C2"))
    assert on_list.status is SendStatus.SUPPRESSED
    assert on_list.code == "lists"
    assert "dnd" in on_list.reason
    banned = world.sends.send(
        request(
            "k-banned",
            message=Message(
                text="保本稳赚的理财，理财非存款、产品有风险、投资须谨慎", product_type="wealth", product_risk="R2"
            ),
        )
    )
    assert banned.status is SendStatus.SUPPRESSED
    assert banned.code == "compliance"
    assert "保本" in banned.reason
    risky = Message(
        text="R4 权益类理财上新。理财非存款、产品有风险、投资须谨慎", product_type="wealth", product_risk="R4"
    )
    unsuitable = world.sends.send(request("k-risk", message=risky, customer_tolerance="C2"))
    assert unsuitable.status is SendStatus.SUPPRESSED
    assert unsuitable.code == "suitability"
    assert world.push.sent == []
    assert world.history.summary("deposit-week") == {"lists": 1, "compliance": 1, "suitability": 1}


def test_sms_gets_signature_and_opt_out_and_the_sms_cap(world: World) -> None:
    first = world.sends.send(request("k-sms-1", channel="sms"))
    second = world.sends.send(request("k-sms-2", channel="sms", campaign="other"))
    assert first.status is SendStatus.SENT
    assert world.sms.sent[0].body == "【示例银行】张先生您好，您关注的存款产品今日可预约。拒收请回复R"
    assert second.status is SendStatus.SUPPRESSED
    assert second.code == "cap"


def test_no_address_fails_and_frees_the_slot(world: World) -> None:
    outcome = world.sends.send(request(addresses={}))
    assert outcome.status is SendStatus.FAILED
    assert outcome.code == "no-address"
    assert outcome.decision is not None
    assert outcome.decision.id is not None
    assert not world.policy.still_active(outcome.decision.id)


def test_fallback_push_then_sms_after_two_days_without_an_open(world: World) -> None:
    plan = FallbackPlan(waves=(Wave(channel="push", wait=timedelta(days=2)), Wave(channel="sms")))
    base = request("wealth:v1:C1")
    progress = world.fallback.advance(base, plan)
    assert [o.status for o in progress.outcomes] == [SendStatus.SENT]
    assert isinstance(progress.step, Wait)
    assert progress.step.until == world.clock.now() + timedelta(days=2)
    world.clock.advance(timedelta(days=1))
    assert world.fallback.advance(base, plan).outcomes == ()
    world.clock.advance(timedelta(days=1))
    progress = world.fallback.advance(base, plan)
    assert [(o.channel, o.status) for o in progress.outcomes] == [("sms", SendStatus.SENT)]
    assert world.sms.sent[0].idempotency_key == "wealth:v1:C1:w1"
    world.clock.advance(timedelta(days=3))
    done = world.fallback.advance(base, plan).step
    assert isinstance(done, Done)
    assert not done.engaged


def test_fallback_stops_when_the_push_is_opened_and_falls_through_a_suppressed_wave(world: World) -> None:
    plan = FallbackPlan(waves=(Wave(channel="push"), Wave(channel="sms")))
    base = request("first-loan:C1")
    world.fallback.advance(base, plan)
    report = world.receipts.apply("push", [world.push.receipt("first-loan:C1:w0", DeliveryStatus.OPENED)])
    assert report.applied == 1
    done = world.fallback.advance(base, plan).step
    assert isinstance(done, Done)
    assert done.engaged
    assert done.index == 0
    # a customer without push consent: wave 1 (push) is suppressed, SMS goes at once
    world.grant("C3", ChannelKind.SMS)
    progress = world.fallback.advance(request("first-loan:C3", customer="C3"), plan)
    assert [(o.channel, o.status) for o in progress.outcomes] == [
        ("push", SendStatus.SUPPRESSED),
        ("sms", SendStatus.SENT),
    ]


def test_receipts_move_forward_only_free_failed_slots_and_unsubscribe(world: World) -> None:
    world.sends.send(request("k1"))
    key_receipt = world.push.receipt("k1", DeliveryStatus.OPENED)
    assert world.receipts.apply("push", [key_receipt]).applied == 1
    late = world.receipts.apply("push", [world.push.receipt("k1", DeliveryStatus.DELIVERED)])
    assert late.stale == 1
    assert world.ledger.get("k1").status is DeliveryStatus.OPENED
    world.sends.send(request("k2", channel="sms"))
    report = world.receipts.apply_callback("sms", world.sms.callback("k2", DeliveryStatus.UNSUBSCRIBED))
    assert report.unsubscribed == 1
    assert not world.consent.may_contact("C1", ChannelKind.SMS, Purpose.MARKETING).allowed
    unknown = world.receipts.apply_callback("push", b'[{"id": "nope", "status": "opened"}]')
    assert unknown.unknown == 1


def test_best_channel_follows_where_the_customer_opens(world: World) -> None:
    candidates = ("push", "wechat")
    for day in range(2):
        world.sends.send(request(f"w{day}", channel="wechat"))
        world.receipts.apply("wechat", [world.wechat.receipt(f"w{day}", DeliveryStatus.OPENED)])
        world.sends.send(request(f"p{day}", channel="push"))
        world.clock.advance(timedelta(days=1))
    best = world.sends.send(request("best-1", channel="best", candidates=candidates))
    assert best.channel == "wechat"
    assert best.status is SendStatus.SENT


def test_bad_requests_are_refused(world: World) -> None:
    with pytest.raises(MarketloopError) as caught:
        world.sends.send(request("has space"))
    assert caught.value.code == "send.invalid-key"
    with pytest.raises(MarketloopError) as unknown:
        world.sends.send(request(channel="fax"))
    assert unknown.value.code == "channels.unknown"
    with pytest.raises(MarketloopError):
        world.sends.send(request(channel="best"))


def test_a_journey_cap_counts_only_its_own_touches(world: World) -> None:
    own = (Cap(limit=1, period=Period.WEEK),)
    first = world.sends.send(request("j:1", channel="wechat", campaign="dormant", caps=own))
    world.clock.advance(timedelta(days=1))
    again = world.sends.send(request("j:2", channel="push", campaign="dormant", caps=own))
    other = world.sends.send(request("o:1", channel="push", campaign="card"))
    assert first.status is SendStatus.SENT
    assert other.status is SendStatus.SENT
    assert again.status is SendStatus.SUPPRESSED
    assert "cap 1 per week per campaign" in again.reason
    assert world.policy.summary("dormant") == {"allowed": 1, "cap": 1}


def test_a_channel_rate_limit_throttles_and_tells_when_to_come_back(world: World) -> None:
    limited = SendService(
        world.sends.channels,
        world.ledger,
        world.policy,
        world.clock,
        limiter=RateLimiter(world.clock, {"push": (2.0, 1)}),
    )
    for customer in ("C1", "C4"):
        world.grant(customer, ChannelKind.PUSH)
    first = limited.send(request("r:1"))
    throttled = limited.send(request("r:2", customer="C4"))
    assert first.status is SendStatus.SENT
    assert throttled.status is SendStatus.THROTTLED
    assert throttled.retry_at == world.clock.now() + timedelta(seconds=0.5)
    world.clock.advance(timedelta(seconds=0.5))
    assert limited.send(request("r:2", customer="C4")).status is SendStatus.SENT
    assert len([r for r in world.history.records if r.customer == "C4"]) == 1  # the retry reused its decision


def test_send_many_decides_in_one_batch_with_priority_and_takes_the_slow_path_for_known_keys(world: World) -> None:
    world.sends.send(request("batch:known"))
    world.grant("C5", ChannelKind.PUSH)
    batch = [
        request("batch:known"),  # already sent: a duplicate, nothing sent
        request("batch:low", campaign="card", priority=1),
        request("batch:high", campaign="maturity", priority=9),
        request("batch:other", customer="C5"),
        request("batch:no-consent", customer="C6"),
    ]
    outcomes = world.sends.send_many(batch)
    assert [o.idempotency_key for o in outcomes] == [r.idempotency_key for r in batch]
    by_key = {o.idempotency_key: o for o in outcomes}
    assert by_key["batch:known"].status is SendStatus.DUPLICATE
    # C1 had one marketing touch today; the daily cap of 2 leaves one slot: the higher priority takes it
    assert by_key["batch:high"].status is SendStatus.SENT
    assert by_key["batch:low"].status is SendStatus.SUPPRESSED
    assert by_key["batch:low"].code == "cap"
    assert by_key["batch:other"].status is SendStatus.SENT
    assert by_key["batch:no-consent"].code == "consent"
    assert sorted(t.idempotency_key for t in world.push.sent) == ["batch:high", "batch:known", "batch:other"]
    assert [o.status for o in world.sends.send_many(batch[1:4])] == [
        SendStatus.SUPPRESSED,
        SendStatus.DUPLICATE,
        SendStatus.DUPLICATE,
    ]
    with pytest.raises(MarketloopError) as twice:
        world.sends.send_many([request("same"), request("same")])
    assert twice.value.code == "send.duplicate-keys"


def test_send_many_retries_what_failed(world: World) -> None:
    world.grant("C7", ChannelKind.PUSH)
    world.push.fail_next(retryable=True)
    outcomes = world.sends.send_many([request("m:1"), request("m:2", customer="C7")])
    assert [o.status for o in outcomes] == [SendStatus.RETRYING, SendStatus.SENT]
    retry_at = outcomes[0].retry_at
    assert retry_at is not None
    world.clock.advance(retry_at - world.clock.now())
    again = world.sends.send_many([request("m:1"), request("m:2", customer="C7")])
    assert [o.status for o in again] == [SendStatus.SENT, SendStatus.DUPLICATE]
    assert world.push.calls == 3


class _Crashing(InMemoryChannel):
    """A channel whose process dies in the middle of a send (the exception is not a ChannelError)."""

    crash = True

    def send(self, touch: Touch) -> SendResult:
        if self.crash:
            raise RuntimeError("worker killed")
        return super().send(touch)


def test_a_send_whose_worker_died_is_taken_over_once_the_claim_is_stale(world: World) -> None:
    crashing = _Crashing("push", ChannelKind.PUSH)
    registry = ChannelRegistry(
        [ConfiguredChannel(name="push", kind=ChannelKind.PUSH, channel=crashing, description="")]
    )
    sends = SendService(registry, world.ledger, world.policy, world.clock)
    with pytest.raises(RuntimeError):
        sends.send(request("crash:1"))
    crashing.crash = False
    in_flight = sends.send(request("crash:1"))
    assert in_flight.status is SendStatus.DUPLICATE  # another worker may still be sending it
    assert in_flight.retry_at == world.clock.now() + timedelta(minutes=10)  # the outbox comes back when it lapses
    assert crashing.sent == []
    world.clock.advance(timedelta(minutes=11))
    taken_over = sends.send(request("crash:1"))
    assert taken_over.status is SendStatus.SENT
    assert taken_over.attempts == 2
    assert len(world.history.records) == 1  # the first decision was reused


def test_a_campaign_budget_is_reserved_per_touch_and_given_back_when_suppressed(world: World) -> None:
    world.grant("C2", ChannelKind.SMS)
    world.grant("C3", ChannelKind.SMS)
    budget = {"channel": "sms", "campaign": "sms-week", "budget_fen": 8}
    first = world.sends.send(request("b:1", **budget))
    capped = world.sends.send(request("b:2", **budget))  # C1's second SMS today: the SMS cap, its 4 fen come back
    second = world.sends.send(request("b:3", customer="C2", **budget))
    over = world.sends.send(request("b:4", customer="C3", **budget))
    assert [o.status for o in (first, capped, second, over)] == [
        SendStatus.SENT,
        SendStatus.SUPPRESSED,
        SendStatus.SENT,
        SendStatus.SUPPRESSED,
    ]
    assert capped.code == "cap"
    assert over.code == "budget"
    assert "spent 0.08 of 0.08 yuan" in over.reason
    assert world.budgets.spent("sms-week") == 8
    explained = world.policy.explain(
        PolicyQuery(customer="C3", channel=ChannelKind.SMS, campaign="sms-week", budget=Budget(limit_fen=8, cost_fen=4))
    )
    assert [c.name for c in explained.checks if not c.passed] == ["budget"]
    assert explained.decision.code == "budget"


def test_a_retried_best_channel_send_stays_on_the_channel_first_chosen(world: World) -> None:
    world.push.fail_next(retryable=True)
    first = world.sends.send(request("best:retry", channel="best", candidates=("push", "wechat")))
    assert (first.channel, first.status) == ("push", SendStatus.RETRYING)
    for day in range(3):  # meanwhile the customer opens WeChat messages: WeChat becomes the best channel
        world.sends.send(request(f"wx{day}", channel="wechat", purpose=Purpose.SERVICE))
        world.receipts.apply("wechat", [world.wechat.receipt(f"wx{day}", DeliveryStatus.OPENED)])
    assert first.retry_at is not None
    world.clock.advance(first.retry_at - world.clock.now())
    retried = world.sends.send(request("best:retry", channel="best", candidates=("push", "wechat")))
    assert (retried.channel, retried.status) == ("push", SendStatus.SENT)
    fresh = world.sends.send(
        request("best:new", channel="best", candidates=("push", "wechat"), purpose=Purpose.SERVICE)
    )
    assert fresh.channel == "wechat"
