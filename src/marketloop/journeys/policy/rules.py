"""The contact policy's rules as data, and the pure function that decides one touch.

Owns frequency caps (频次控制: per day / ISO week / month, in the customer's
local calendar, globally, per channel or per campaign), quiet hours (免打扰时段,
wrapping midnight, deferred to their end or suppressed), the gates that
suppress (suppression lists, consent, suitability, content compliance) and
online priority arbitration: when a cap is full, a higher-priority request
takes the slot of a lower-priority touch that is deferred and not yet due.

Pure: time, the customer's time zone, the history and the gate facts come in
as arguments; nothing here reads a clock or a store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum

from marketloop.core.consent import Channel, Purpose
from marketloop.ports.contact_policy import ContactRecord, HistoryUpdate, Outcome


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO week, Monday to Sunday, local time
    MONTH = "month"


@dataclass(frozen=True, kw_only=True)
class Cap:
    """At most `limit` counted touches per `period`; `channel` None = every channel; `per_campaign` counts
    each campaign (journey) separately."""

    limit: int
    period: Period
    channel: Channel | None = None
    purposes: frozenset[Purpose] = frozenset({Purpose.MARKETING})
    per_campaign: bool = False

    def describe(self) -> str:
        scope = f"{self.channel} " if self.channel else ""
        campaign = " per campaign" if self.per_campaign else ""
        purposes = "/".join(sorted(self.purposes))
        return f"{purposes} {scope}cap {self.limit} per {self.period}{campaign}"


@dataclass(frozen=True, kw_only=True)
class QuietHours:
    """No touch on `channels` for `purposes` from `start` to `end` local time (the window may wrap midnight)."""

    start: time
    end: time
    channels: frozenset[Channel]
    purposes: frozenset[Purpose] = frozenset({Purpose.MARKETING})
    defer: bool = True  # False: suppress instead of sending at the end of the window


@dataclass(frozen=True, kw_only=True)
class ContactPolicy:
    caps: tuple[Cap, ...] = ()
    quiet_hours: tuple[QuietHours, ...] = ()
    # Which purposes each suppression list blocks; a list not named here blocks marketing.
    lists: Mapping[str, frozenset[Purpose]] = field(default_factory=dict)


DEFAULT_POLICY = ContactPolicy(
    caps=(
        Cap(limit=2, period=Period.DAY),
        Cap(limit=5, period=Period.WEEK),
        Cap(limit=1, period=Period.DAY, channel=Channel.SMS),
    ),
    quiet_hours=(QuietHours(start=time(21), end=time(8), channels=frozenset({Channel.SMS, Channel.PUSH})),),
    lists={"dnd": frozenset({Purpose.MARKETING}), "holdout": frozenset({Purpose.MARKETING})},
)


@dataclass(frozen=True, kw_only=True)
class ContactRequest:
    """A touch a campaign or journey wants to make."""

    customer: str
    channel: Channel
    purpose: Purpose
    campaign: str
    priority: int = 0  # higher wins a contended cap
    at: datetime  # when the decision is made (UTC, aware)
    timezone: tzinfo  # the customer's local time zone
    idempotency_key: str = ""


@dataclass(frozen=True, kw_only=True)
class Budget:
    """A campaign's (journey's) budget in fen (分) and what this touch costs (per-channel price)."""

    limit_fen: int
    cost_fen: int


@dataclass(frozen=True, kw_only=True)
class Gates:
    """What the service found out before timing: a suppression reason from lists, consent or compliance."""

    blocked_code: str = ""  # list, consent, suitability, compliance; "" = nothing blocks
    blocked_reason: str = ""


def period_start(moment: datetime, timezone: tzinfo, period: Period) -> datetime:
    """The start of the local calendar day / ISO week / month containing `moment`, as an aware datetime."""
    local = moment.astimezone(timezone)
    day = local.date()
    if period is Period.WEEK:
        day -= timedelta(days=day.weekday())
    elif period is Period.MONTH:
        day = day.replace(day=1)
    return datetime.combine(day, time(0), tzinfo=timezone)


def period_end(moment: datetime, timezone: tzinfo, period: Period) -> datetime:
    start = period_start(moment, timezone, period)
    if period is Period.DAY:
        nxt = start.date() + timedelta(days=1)
    elif period is Period.WEEK:
        nxt = start.date() + timedelta(days=7)
    else:
        nxt = (start.date().replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime.combine(nxt, time(0), tzinfo=timezone)


def history_since(policy: ContactPolicy, moment: datetime, timezone: tzinfo) -> datetime:
    """How far back the history must reach to count every cap at `moment` or later."""
    periods = {cap.period for cap in policy.caps} or {Period.DAY}
    return min(period_start(moment, timezone, p) for p in periods)


def quiet_until(moment: datetime, timezone: tzinfo, window: QuietHours) -> datetime | None:
    """The end of the quiet window containing `moment` (aware, local zone), or None outside the window."""
    local = moment.astimezone(timezone)
    now = local.time().replace(tzinfo=None)
    if window.start == window.end:
        return None
    if window.start < window.end:
        inside, end_day = window.start <= now < window.end, local.date()
    else:  # wraps midnight: 21:00–08:00
        inside = now >= window.start or now < window.end
        end_day = local.date() + timedelta(days=1) if now >= window.start else local.date()
    return datetime.combine(end_day, window.end, tzinfo=timezone) if inside else None


def _applies(cap: Cap, request: ContactRequest, record: ContactRecord) -> bool:
    if record.purpose not in cap.purposes or (cap.channel is not None and record.channel != cap.channel):
        return False
    return not cap.per_campaign or record.campaign == request.campaign


def _counted(
    history: Sequence[ContactRecord], cap: Cap, request: ContactRequest, when: datetime
) -> list[ContactRecord]:
    start = period_start(when, request.timezone, cap.period)
    end = period_end(when, request.timezone, cap.period)
    return [
        r
        for r in history
        if r.active
        and r.outcome is not Outcome.SUPPRESS
        and start <= r.effective_at < end
        and _applies(cap, request, r)
    ]


def _caps_for(policy: ContactPolicy, request: ContactRequest) -> list[Cap]:
    return [
        c for c in policy.caps if request.purpose in c.purposes and (c.channel is None or c.channel == request.channel)
    ]


def _touch_time(policy: ContactPolicy, request: ContactRequest) -> tuple[datetime, QuietHours | None]:
    """When the touch may happen: now, or the end of the quiet hours it falls in (checked again after moving)."""
    when, hit = request.at, None
    for _ in range(len(policy.quiet_hours) + 1):
        moved = False
        for window in policy.quiet_hours:
            if request.channel not in window.channels or request.purpose not in window.purposes:
                continue
            end = quiet_until(when, request.timezone, window)
            if end is not None:
                when, hit, moved = end, window, True
        if not moved:
            break
    return when, hit


def decide(
    policy: ContactPolicy, request: ContactRequest, gates: Gates, history: Sequence[ContactRecord]
) -> HistoryUpdate:
    """The decision about `request` given the gates and the customer's history (records since `history_since`)."""
    if gates.blocked_code:
        return _update(request, Outcome.SUPPRESS, gates.blocked_code, gates.blocked_reason, request.at)
    when, window = _touch_time(policy, request)
    if window is not None and not window.defer:
        reason = f"quiet hours {window.start:%H:%M}–{window.end:%H:%M} for {request.channel}"
        return _update(request, Outcome.SUPPRESS, "quiet-hours", reason, request.at)
    revoke: list[ContactRecord] = []
    for cap in _caps_for(policy, request):
        counted = [r for r in _counted(history, cap, request, when) if r not in revoke]
        if len(counted) < cap.limit:
            continue
        victim = _preemptable(counted, request)
        if victim is None:
            local_day = when.astimezone(request.timezone).date().isoformat()
            reason = f"{cap.describe()} reached ({len(counted)} touches in the {cap.period} of {local_day})"
            return _update(request, Outcome.SUPPRESS, "cap", reason, request.at)
        revoke.append(victim)
    return _granted(request, when, window, revoke)


def _preemptable(counted: list[ContactRecord], request: ContactRequest) -> ContactRecord | None:
    """The lowest-priority deferred touch, not yet due, of lower priority than `request`; None when none."""
    waiting = [
        r
        for r in counted
        if r.outcome is Outcome.DEFER and r.effective_at > request.at and r.priority < request.priority and r.id
    ]
    return min(waiting, key=lambda r: (r.priority, -r.effective_at.timestamp()), default=None)


def _granted(
    request: ContactRequest, when: datetime, window: QuietHours | None, revoke: list[ContactRecord]
) -> HistoryUpdate:
    taken = "".join(f"; took the slot of {r.campaign} (priority {r.priority}, #{r.id})" for r in revoke)
    if window is None:
        update = _update(request, Outcome.ALLOW, "allowed", "within caps and outside quiet hours" + taken, when)
    else:
        reason = f"quiet hours {window.start:%H:%M}–{window.end:%H:%M}; deferred to {when.isoformat()}" + taken
        update = _update(request, Outcome.DEFER, "quiet-hours", reason, when)
    by_whom = f"preempted by {request.campaign} (priority {request.priority})"
    return replace(update, revoke=tuple(r.id for r in revoke if r.id is not None), revoke_reason=by_whom)


def _update(request: ContactRequest, outcome: Outcome, code: str, reason: str, when: datetime) -> HistoryUpdate:
    return HistoryUpdate(
        record=ContactRecord(
            customer=request.customer,
            channel=request.channel,
            purpose=request.purpose,
            campaign=request.campaign,
            priority=request.priority,
            outcome=outcome,
            code=code,
            reason=reason,
            decided_at=request.at,
            effective_at=when,
            idempotency_key=request.idempotency_key,
            active=outcome is not Outcome.SUPPRESS,
        )
    )
