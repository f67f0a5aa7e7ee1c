"""The stores behind channels and policy, the same tests on the in-memory fakes and on SQL (SQLite):
delivery ledger, contact history (caps under concurrent threads), suppression lists, inbox and RM tasks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from marketloop.adapters.channels.stored import InboxChannel, RmTaskChannel
from marketloop.adapters.sql.channel_tables import ensure_channel_tables
from marketloop.adapters.sql.contact_policy import SqlBudgets, SqlContactHistory, SqlSuppressionLists
from marketloop.adapters.sql.deliveries import SqlDeliveryLedger
from marketloop.adapters.sql.engine import create_engine
from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import Purpose
from marketloop.journeys.channels.receipts import ReceiptService
from marketloop.journeys.channels.registry import ChannelRegistry
from marketloop.journeys.channels.workbench import InboxService, RmTaskService
from marketloop.journeys.policy.rules import DEFAULT_POLICY, ContactRequest, Gates, decide
from marketloop.journeys.policy.service import ContactPolicyService
from marketloop.policy.consent import ConsentService
from marketloop.ports.channels import Claim, DeliveryLedger, DeliveryStatus, SendResult, Touch
from marketloop.ports.contact_policy import Budgets, ContactHistory, ListEntry, Outcome, SuppressionLists
from marketloop.ports.inbox import TaskStatus
from marketloop.testing.channels import (
    InMemoryBudgets,
    InMemoryConsentStore,
    InMemoryContactHistory,
    InMemoryDeliveryLedger,
    InMemorySuppressionLists,
)
from marketloop.testing.clock import FrozenClock

T0 = datetime(2026, 1, 5, 2, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    made = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    ensure_channel_tables(made)
    ensure_channel_tables(made)  # idempotent
    return made


@pytest.fixture(params=["memory", "sql"])
def ledger(request: pytest.FixtureRequest, engine: sa.Engine) -> DeliveryLedger:
    return InMemoryDeliveryLedger() if request.param == "memory" else SqlDeliveryLedger(engine)


@pytest.fixture(params=["memory", "sql"])
def history(request: pytest.FixtureRequest, engine: sa.Engine) -> ContactHistory:
    return InMemoryContactHistory() if request.param == "memory" else SqlContactHistory(engine)


@pytest.fixture(params=["memory", "sql"])
def lists(request: pytest.FixtureRequest, engine: sa.Engine) -> SuppressionLists:
    return InMemorySuppressionLists() if request.param == "memory" else SqlSuppressionLists(engine)


def _claim(ledger: DeliveryLedger, key: str, at: datetime = T0) -> object:
    return ledger.claim(key=key, channel="sms", kind=ChannelKind.SMS, customer="C1", campaign="c", at=at)


def test_a_key_is_claimed_once_until_it_is_retrying(ledger: DeliveryLedger) -> None:
    first = ledger.claim(key="k", channel="sms", kind=ChannelKind.SMS, customer="C1", campaign="c", at=T0)
    assert first is not None
    assert first.attempts == 1
    assert _claim(ledger, "k") is None  # being sent
    ledger.fail("k", "timeout", DeliveryStatus.RETRYING, T0, T0 + timedelta(seconds=30))
    second = ledger.claim(key="k", channel="sms", kind=ChannelKind.SMS, customer="C1", campaign="c", at=T0)
    assert second is not None
    assert second.attempts == 2
    ledger.complete("k", SendResult(idempotency_key="k", provider_message_id="p1", parts=2), T0)
    assert _claim(ledger, "k") is None  # sent
    row = ledger.get("k")
    assert row is not None
    assert (row.status, row.provider_message_id, row.parts) == (DeliveryStatus.ACCEPTED, "p1", 2)
    assert ledger.by_provider_id("sms", "p1") == row


def test_a_stale_pending_claim_may_be_taken_over(ledger: DeliveryLedger) -> None:
    assert _claim(ledger, "k") is not None
    pending = ledger.get("k")
    assert pending is not None
    assert pending.retry_at == T0 + timedelta(minutes=10)  # when the claim lapses: come back then
    assert ledger.get_many(["k"])["k"].retry_at == pending.retry_at
    assert _claim(ledger, "k", T0 + timedelta(minutes=5)) is None
    assert _claim(ledger, "k", T0 + timedelta(minutes=11)) is not None
    ledger.complete("k", SendResult(idempotency_key="k", provider_message_id="p1"), T0 + timedelta(minutes=11))
    sent = ledger.get("k")
    assert sent is not None
    assert sent.retry_at is None


def test_receipts_only_move_forward_and_count_engagement(ledger: DeliveryLedger) -> None:
    for key, pid in (("a", "p1"), ("b", "p2"), ("c", "p3")):
        _claim(ledger, key)
        ledger.complete(key, SendResult(idempotency_key=key, provider_message_id=pid), T0)
    assert ledger.advance("a", DeliveryStatus.OPENED, T0)
    assert not ledger.advance("a", DeliveryStatus.DELIVERED, T0)
    assert ledger.advance("b", DeliveryStatus.CLICKED, T0)
    _claim(ledger, "d")
    ledger.fail("d", "refused", DeliveryStatus.FAILED, T0, None)
    assert ledger.engagement("C1") == {ChannelKind.SMS: (3, 2)}
    assert [d.idempotency_key for d in ledger.list(status=DeliveryStatus.FAILED)] == ["d"]


def test_concurrent_claims_of_one_key_give_it_to_one_worker(engine: sa.Engine) -> None:
    ledger = SqlDeliveryLedger(engine)
    winners: list[object] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        if _claim(ledger, "same") is not None:
            winners.append(1)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


def test_caps_hold_when_threads_decide_for_the_same_customer_at_once(engine: sa.Engine) -> None:
    history = SqlContactHistory(engine)
    zone = timezone(timedelta(hours=8))
    barrier = threading.Barrier(10)

    def one(index: int) -> None:
        request = ContactRequest(
            customer="C1",
            channel=ChannelKind.PUSH,
            purpose=Purpose.MARKETING,
            campaign=f"c{index}",
            at=T0,
            timezone=zone,
            idempotency_key=f"k{index}",
        )
        barrier.wait()
        history.decide("C1", T0 - timedelta(days=31), lambda past: decide(DEFAULT_POLICY, request, Gates(), past))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = history.history("C1", limit=100)
    assert len(records) == 10
    assert sum(r.outcome is Outcome.ALLOW for r in records) == 2  # the daily marketing cap
    assert {r.code for r in records if r.outcome is Outcome.SUPPRESS} == {"cap"}


def test_history_records_find_deactivate_and_summarise(history: ContactHistory) -> None:
    zone = timezone(timedelta(hours=8))
    request = ContactRequest(
        customer="C1",
        channel=ChannelKind.SMS,
        purpose=Purpose.MARKETING,
        campaign="wealth",
        at=T0,
        timezone=zone,
        idempotency_key="k1",
    )
    record = history.decide("C1", T0, lambda past: decide(DEFAULT_POLICY, request, Gates(), past))
    assert record.id is not None
    assert history.find("C1", "k1") == record
    history.deactivate(record.id, "not delivered")
    stored = history.get(record.id)
    assert stored is not None
    assert not stored.active
    assert stored.reason.endswith("not delivered")
    assert history.summary("wealth") == {"allowed": 1}
    assert history.find("C1", "other") is None


def test_suppression_lists(lists: SuppressionLists) -> None:
    lists.add(ListEntry(list_name="dnd", customer="C1", reason="投诉", added_at=T0))
    lists.add(ListEntry(list_name="holdout", customer="C1", reason="", added_at=T0, until=T0 + timedelta(days=1)))
    assert [e.list_name for e in lists.memberships("C1", T0 + timedelta(hours=1))] == ["dnd", "holdout"]
    assert [e.list_name for e in lists.memberships("C1", T0 + timedelta(days=2))] == ["dnd"]
    assert [e.customer for e in lists.entries("dnd")] == ["C1"]
    assert lists.remove("dnd", "C1")
    assert not lists.remove("dnd", "C1")


def _touch(kind: ChannelKind, key: str, **kw: object) -> Touch:
    base: dict[str, object] = {
        "idempotency_key": key,
        "customer": "C1",
        "channel": kind,
        "purpose": Purpose.MARKETING,
        "address": "C1",
        "body": "您有一张加息券待领取",
        "title": "加息券",
        "campaign": "maturity",
    }
    return Touch(**(base | kw))  # type: ignore[arg-type]


def _receipts(ledger: DeliveryLedger, clock: FrozenClock) -> ReceiptService:
    history, lists = InMemoryContactHistory(), InMemorySuppressionLists()
    consent = ConsentService(InMemoryConsentStore(), clock)
    policy = ContactPolicyService(history, lists, consent, clock)
    return ReceiptService(ChannelRegistry([]), ledger, policy, clock)


def test_inbox_stores_once_lists_and_reading_is_an_open(engine: sa.Engine) -> None:
    clock = FrozenClock(T0)
    channel = InboxChannel(name="inapp", engine=engine, clock=clock)
    ledger = SqlDeliveryLedger(engine)
    _ = ledger.claim(key="k1", channel="inapp", kind=ChannelKind.INAPP, customer="C1", campaign="maturity", at=T0)
    first = channel.send(_touch(ChannelKind.INAPP, "k1"))
    assert channel.send(_touch(ChannelKind.INAPP, "k1")).provider_message_id == first.provider_message_id
    ledger.complete("k1", first, T0)
    inbox = InboxService(channel, _receipts(ledger, clock), clock)
    messages = inbox.messages("C1")
    assert [m.title for m in messages] == ["加息券"]
    opened = inbox.read("C1", first.provider_message_id)
    assert opened.message.read_at == T0
    assert [(r.status, r.customer, r.idempotency_key) for r in opened.receipts] == [(DeliveryStatus.OPENED, "C1", "k1")]
    assert inbox.read("C1", first.provider_message_id).receipts == ()  # read again: no second receipt
    assert inbox.messages("C1", unread_only=True) == []
    row = ledger.get("k1")
    assert row is not None
    assert row.status is DeliveryStatus.OPENED


def test_rm_tasks_are_listed_by_rm_and_closed_with_an_outcome(engine: sa.Engine) -> None:
    clock = FrozenClock(T0)
    channel = RmTaskChannel(name="rm", engine=engine, clock=clock)
    tasks = RmTaskService(channel, _receipts(SqlDeliveryLedger(engine), clock), clock)
    made = channel.send(_touch(ChannelKind.RM, "t1", sender="rm_li", body="VIP 客户理财 7 日后到期，请联系续作"))
    channel.send(_touch(ChannelKind.RM, "t2"))
    assert [t.id for t in tasks.tasks(relationship_manager="rm_li")] == [made.provider_message_id]
    assert [t.relationship_manager for t in tasks.tasks(relationship_manager="unassigned")] == ["unassigned"]
    closed = tasks.close(made.provider_message_id, "已电话联系，客户续作").task
    assert closed.status is TaskStatus.CLOSED
    assert closed.closed_at == T0
    assert tasks.tasks(status=TaskStatus.OPEN)[0].id != made.provider_message_id


def test_an_rms_tasks_come_earliest_due_first_then_by_priority(engine: sa.Engine) -> None:
    channel = RmTaskChannel(name="rm", engine=engine, clock=FrozenClock(T0))
    touches = {
        "later": _touch(ChannelKind.RM, "later", sender="rm_li", due_at=T0 + timedelta(days=2)),
        "soon": _touch(ChannelKind.RM, "soon", sender="rm_li", due_at=T0 + timedelta(hours=4), urgency="low"),
        "plain": _touch(ChannelKind.RM, "plain", sender="rm_li"),
        "urgent": _touch(ChannelKind.RM, "urgent", sender="rm_li", urgency="urgent"),
    }
    ids = {key: channel.send(touch).provider_message_id for key, touch in touches.items()}
    listed = channel.tasks(relationship_manager="rm_li")
    assert [t.id for t in listed] == [ids["soon"], ids["later"], ids["urgent"], ids["plain"]]
    assert (listed[0].due_at, listed[0].priority) == (T0 + timedelta(hours=4), "low")
    assert (listed[2].due_at, listed[2].priority) == (None, "urgent")
    assert listed[3].priority == "normal"


def test_batches_claim_complete_and_decide_in_one_go(ledger: DeliveryLedger, history: ContactHistory) -> None:
    _claim(ledger, "sent")
    ledger.complete("sent", SendResult(idempotency_key="sent", provider_message_id="p0"), T0)
    _claim(ledger, "retry")
    ledger.fail("retry", "timeout", DeliveryStatus.RETRYING, T0, T0)
    claims = [
        Claim(key=k, channel="sms", kind=ChannelKind.SMS, customer="C1", campaign="c") for k in ("new", "sent", "retry")
    ]
    rows = ledger.claim_many(claims, T0)
    assert [r.attempts if r else None for r in rows] == [1, None, 2]
    ledger.complete_many([SendResult(idempotency_key=k, provider_message_id=f"p-{k}") for k in ("new", "retry")], T0)
    assert {k: d.status for k, d in ledger.get_many(["new", "retry", "none"]).items()} == {
        "new": DeliveryStatus.ACCEPTED,
        "retry": DeliveryStatus.ACCEPTED,
    }
    zone = timezone(timedelta(hours=8))

    def item(index: int) -> tuple[str, datetime, object]:
        request = ContactRequest(
            customer="C1",
            channel=ChannelKind.SMS,
            purpose=Purpose.MARKETING,
            campaign=f"c{index}",
            at=T0,
            timezone=zone,
            idempotency_key=f"k{index}",
        )
        return ("C1", T0 - timedelta(days=1), lambda past: decide(DEFAULT_POLICY, request, Gates(), past))

    records = history.decide_many([item(i) for i in range(3)])  # type: ignore[misc]
    assert [r.outcome for r in records] == [Outcome.ALLOW, Outcome.SUPPRESS, Outcome.SUPPRESS]  # 1 SMS a day
    assert all(r.id is not None for r in records)


@pytest.mark.parametrize("kind", ["memory", "sql"])
def test_budgets_never_overspend_even_from_threads(kind: str, engine: sa.Engine) -> None:
    budgets: Budgets = InMemoryBudgets() if kind == "memory" else SqlBudgets(engine)
    assert not budgets.reserve("tiny", 5, 4)
    assert budgets.reserve("c", 4, 10)
    budgets.release("c", 4)
    assert budgets.spent("c") == 0
    taken: list[bool] = []
    barrier = threading.Barrier(8)

    def take() -> None:
        barrier.wait()
        taken.append(budgets.reserve("race", 4, 10))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert taken.count(True) == 2
    assert budgets.spent("race") == 8
