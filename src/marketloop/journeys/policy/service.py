"""The contact policy service: gather the facts of one touch, decide it, record the decision.

Owns the order of the checks (suppression lists, consent, suitability and
content compliance, then quiet hours and caps with priority arbitration),
recording every decision in the contact history so caps count across
campaigns and journeys, and `explain`, which runs every check without
recording and says what each found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from functools import partial
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marketloop.campaigns.compliance import DEFAULT_RULES, ComplianceReport, ComplianceRules, check_send
from marketloop.core.consent import Channel, Decision, Purpose
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.journeys.policy.rules import (
    DEFAULT_POLICY,
    Budget,
    Cap,
    ContactPolicy,
    ContactRequest,
    Gates,
    decide,
    history_since,
)
from marketloop.ports.clock import Clock
from marketloop.ports.contact_policy import (
    Budgets,
    ContactHistory,
    ContactRecord,
    ListEntry,
    Outcome,
    SuppressionLists,
)


class ConsentCheck(Protocol):
    """What the policy asks of consent (implemented by `marketloop.policy.consent.ConsentService`)."""

    def may_contact(self, customer: str, channel: Channel, purpose: Purpose, at: datetime | None = None) -> Decision:
        """Whether the customer consented to `purpose` on `channel` at `at`, and why."""
        ...

    def may_contact_many(
        self, asks: Sequence[tuple[str, Channel, Purpose]], at: datetime | None = None
    ) -> list[Decision]:
        """`may_contact` for many at once."""
        ...


@dataclass(frozen=True, kw_only=True)
class Content:
    """The final text of a touch and what suitability needs; `product_risk` None = not a risk-rated product."""

    text: str
    product_type: str | None = None
    product_risk: str | None = None
    customer_tolerance: str | None = None


@dataclass(frozen=True, kw_only=True)
class PolicyQuery:
    customer: str
    channel: Channel
    purpose: Purpose = Purpose.MARKETING
    campaign: str = ""
    priority: int = 0
    timezone: str | None = None  # IANA name or ±HH:MM; default the policy's
    idempotency_key: str = ""
    content: Content | None = None
    caps: tuple[Cap, ...] = ()  # the journey's own caps (每个旅程的频次上限), counted for this campaign only
    budget: Budget | None = None  # the campaign's budget (预算); an allowed or deferred touch reserves its cost


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str  # lists, consent, compliance, timing
    passed: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class Explanation:
    decision: ContactRecord
    checks: tuple[Check, ...]
    compliance: ComplianceReport | None


def parse_timezone(name: str) -> tzinfo:
    """An IANA zone ("Asia/Shanghai") or a fixed offset ("+08:00"); a clear error otherwise."""
    text = name.strip()
    if text[:1] in "+-" and len(text) == 6 and text[3] == ":":
        try:
            return datetime.fromisoformat(f"2000-01-01T00:00:00{text}").tzinfo or ZoneInfo("UTC")
        except ValueError:
            pass
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="policy.invalid-timezone",
            title="Unknown time zone: use an IANA name (Asia/Shanghai) or an offset (+08:00)",
            detail=repr(name[:50]),
        ) from error


class ContactPolicyService:
    """Decides and records every touch; see the module docstring."""

    def __init__(
        self,
        history: ContactHistory,
        lists: SuppressionLists,
        consent: ConsentCheck,
        clock: Clock,
        *,
        policy: ContactPolicy = DEFAULT_POLICY,
        rules: ComplianceRules = DEFAULT_RULES,
        timezone: str = "Asia/Shanghai",
        budgets: Budgets | None = None,
    ) -> None:
        self._history = history
        self._lists = lists
        self._consent = consent
        self._clock = clock
        self.policy = policy
        self._rules = rules
        self._timezone = parse_timezone(timezone)
        self._budgets = budgets

    def check(self, query: PolicyQuery) -> ContactRecord:
        """Decide `query` now and record the decision; allowed and deferred touches count against caps."""
        request = self._request(query)
        gates, _, _ = self._gates(query, request.at)
        gates, reserved = self._reserve(query, gates)
        policy = self._policy_for(query)
        since = history_since(policy, request.at, request.timezone)
        record = self._history.decide(request.customer, since, lambda past: decide(policy, request, gates, past))
        self._settle(query, reserved, record)
        return record

    def _reserve(self, query: PolicyQuery, gates: Gates) -> tuple[Gates, bool]:
        """Take the touch's cost from the campaign's budget (when it has one and nothing else blocks)."""
        if query.budget is None or gates.blocked_code:
            return gates, False
        if self._budgets is None:
            raise MarketloopError(
                kind=ErrorKind.INVALID, code="policy.no-budgets", title="This installation keeps no campaign budgets"
            )
        budget = query.budget
        if self._budgets.reserve(query.campaign, budget.cost_fen, budget.limit_fen):
            return gates, True
        spent = self._budgets.spent(query.campaign)
        reason = f"budget: campaign {query.campaign} has spent {spent / 100:.2f} of {budget.limit_fen / 100:.2f} yuan"
        return Gates(blocked_code="budget", blocked_reason=reason), False

    def _budget_check(self, query: PolicyQuery, gates: Gates, checks: list[Check]) -> Gates:
        """For `explain`: whether the touch would fit the campaign's budget (nothing is reserved)."""
        if query.budget is None or self._budgets is None:
            return gates
        spent, budget = self._budgets.spent(query.campaign), query.budget
        fits = spent + budget.cost_fen <= budget.limit_fen
        detail = f"spent {spent / 100:.2f} of {budget.limit_fen / 100:.2f} yuan; this touch {budget.cost_fen / 100:.2f}"
        checks.append(Check(name="budget", passed=fits, detail=detail))
        return gates if fits or gates.blocked_code else Gates(blocked_code="budget", blocked_reason=f"budget: {detail}")

    def _settle(self, query: PolicyQuery, reserved: bool, record: ContactRecord) -> None:
        """A reserved touch that was suppressed (caps, quiet hours) gives its cost back."""
        if reserved and query.budget is not None and self._budgets is not None and record.outcome is Outcome.SUPPRESS:
            self._budgets.release(query.campaign, query.budget.cost_fen)

    def _policy_for(self, query: PolicyQuery) -> ContactPolicy:
        if not query.caps:
            return self.policy
        own = tuple(replace(cap, per_campaign=True) for cap in query.caps)
        return replace(self.policy, caps=self.policy.caps + own)

    def check_many(self, queries: Sequence[PolicyQuery]) -> list[ContactRecord]:
        """Decide and record many requests in one transaction, highest priority first (then in the given order,
        so competing campaigns for the same customer's cap are arbitrated); results in the order of `queries`."""
        requests = [self._request(q) for q in queries]
        order = sorted(range(len(queries)), key=lambda i: (-requests[i].priority, i))
        at = self._clock.now()
        lists = self._lists.memberships_many({q.customer.strip() for q in queries}, at)
        asks = [(q.customer.strip(), q.channel, q.purpose) for q in queries]
        consents = self._consent.may_contact_many(asks, at)
        items = []
        reserved: list[bool] = []
        for index in order:
            query, request = queries[index], requests[index]
            known = (lists.get(query.customer.strip(), []), consents[index])
            gates, _, _ = self._gates(query, request.at, known)
            gates, took = self._reserve(query, gates)
            reserved.append(took)
            policy = self._policy_for(query)
            since = history_since(policy, request.at, request.timezone)
            items.append((request.customer, since, partial(decide, policy, request, gates)))
        records = self._history.decide_many(items)
        for index, took, record in zip(order, reserved, records, strict=True):
            self._settle(queries[index], took, record)
        decided = dict(zip(order, records, strict=True))
        return [decided[i] for i in range(len(queries))]

    def explain(self, query: PolicyQuery) -> Explanation:
        """What `check` would decide now and what every check found, without recording anything."""
        request = self._request(query)
        gates, checks, report = self._gates(query, request.at)
        gates = self._budget_check(query, gates, checks)
        policy = self._policy_for(query)
        since = history_since(policy, request.at, request.timezone)
        past = [r for r in reversed(self._history.history(request.customer, limit=10_000)) if r.effective_at >= since]
        update = decide(policy, request, gates, past)
        if not gates.blocked_code:  # timing (quiet hours, caps) is reached only when no gate blocks
            checks.append(
                Check(name="timing", passed=update.record.outcome is not Outcome.SUPPRESS, detail=update.record.reason)
            )
        return Explanation(decision=update.record, checks=tuple(checks), compliance=report)

    def check_text(self, text: str, channel: Channel) -> ComplianceReport:
        """Content compliance alone, as for a marketing touch on `channel` (test sends)."""
        return check_send(
            text,
            product_type=None,
            product_risk=None,
            channel=channel.value,
            customer_tolerance=None,
            rules=self._rules,
        )

    def blocking(self, query: PolicyQuery) -> Gates:
        """Only the gates (lists, consent, compliance) now: what a deferred touch re-checks when it is due."""
        gates, _, _ = self._gates(query, self._clock.now())
        return gates

    def decisions_for(self, touches: Sequence[tuple[str, str]]) -> dict[tuple[str, str], ContactRecord]:
        """`decision_for` of many (customer, idempotency key) at once; touches with none are missing."""
        return self._history.find_many([(customer.strip(), key) for customer, key in touches if key])

    def decision_for(self, customer: str, idempotency_key: str) -> ContactRecord | None:
        """The newest decision made for the touch `idempotency_key`, or None."""
        return self._history.find(customer.strip(), idempotency_key) if idempotency_key else None

    def still_active(self, record_id: int) -> bool:
        """Whether a deferred decision still holds when its time comes (not preempted, not released)."""
        record = self._history.get(record_id)
        return record is not None and record.active

    def release(self, record_id: int, reason: str) -> None:
        """The touch was not delivered: stop counting it against caps."""
        self._history.deactivate(record_id, reason)

    def history(self, customer: str, *, limit: int = 100) -> list[ContactRecord]:
        return self._history.history(customer, limit=limit)

    def summary(self, campaign: str, since: datetime | None = None) -> Mapping[str, int]:
        """The campaign's (journey's) decisions by reason code: allowed, quiet-hours, cap, consent, lists, …"""
        return self._history.summary(campaign, since)

    def _request(self, query: PolicyQuery) -> ContactRequest:
        customer = query.customer.strip()
        if not customer or len(customer) > 100:
            raise MarketloopError(
                kind=ErrorKind.INVALID,
                code="policy.invalid-customer",
                title="A customer number or OneID of 1 to 100 characters is needed",
                detail=repr(query.customer[:50]),
            )
        return ContactRequest(
            customer=customer,
            channel=query.channel,
            purpose=query.purpose,
            campaign=query.campaign,
            priority=query.priority,
            at=self._clock.now(),
            timezone=parse_timezone(query.timezone) if query.timezone else self._timezone,
            idempotency_key=query.idempotency_key,
        )

    def _gates(
        self, query: PolicyQuery, at: datetime, known: tuple[Sequence[ListEntry], Decision] | None = None
    ) -> tuple[Gates, list[Check], ComplianceReport | None]:
        """Lists, consent and compliance at `at`; `known`: the list entries and consent read for a batch."""
        checks: list[Check] = []
        entries = known[0] if known is not None else self._lists.memberships(query.customer.strip(), at)
        on = self._blocking_lists(entries, query.purpose)
        checks.append(Check(name="lists", passed=not on, detail=_lists_detail(on)))
        consent = (
            known[1]
            if known is not None
            else self._consent.may_contact(query.customer.strip(), query.channel, query.purpose, at)
        )
        checks.append(Check(name="consent", passed=consent.allowed, detail=consent.reason))
        report = self._compliance(query)
        if report is not None:
            detail = "; ".join(f.message for f in report.errors) or "no errors"
            checks.append(Check(name="compliance", passed=report.passed, detail=detail))
        return _first_block(checks, report), checks, report

    def _blocking_lists(self, entries: Sequence[ListEntry], purpose: Purpose) -> list[ListEntry]:
        blocked = self.policy.lists
        return [e for e in entries if purpose in blocked.get(e.list_name, frozenset({Purpose.MARKETING}))]

    def _compliance(self, query: PolicyQuery) -> ComplianceReport | None:
        content = query.content
        if content is None:
            return None
        return check_send(
            content.text,
            product_type=content.product_type,
            product_risk=content.product_risk,
            channel=query.channel.value if query.purpose is Purpose.MARKETING else "",
            customer_tolerance=content.customer_tolerance,
            rules=self._rules,
        )


def _lists_detail(entries: Sequence[ListEntry]) -> str:
    if not entries:
        return "on no suppression list"
    return "; ".join(f"on list {e.list_name}" + (f" ({e.reason})" if e.reason else "") for e in entries)


def _first_block(checks: list[Check], report: ComplianceReport | None) -> Gates:
    for check in checks:
        if check.passed:
            continue
        code = check.name
        if check.name == "compliance" and report is not None and all(f.code.startswith("suit") for f in report.errors):
            code = "suitability"
        return Gates(blocked_code=code, blocked_reason=f"{check.name}: {check.detail}")
    return Gates()
