"""Multi-wave fallback (多波次触达): e.g. push; not opened within 2 days → SMS; still nothing → WeChat.

Pure: given the plan, what happened to each wave so far and the time, say
what to do next. The send service keeps the facts (ledger and contact
history, keyed `<key>:w<n>`), so the plan survives restarts and the journey
engine only has to call again at `Wait.until`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


@dataclass(frozen=True, kw_only=True)
class Wave:
    channel: str  # a configured channel name, or "best"
    wait: timedelta = timedelta(days=2)  # how long to wait for an open or click before the next wave


@dataclass(frozen=True, kw_only=True)
class FallbackPlan:
    waves: tuple[Wave, ...]


class WaveState(StrEnum):
    NOT_STARTED = "not-started"
    IN_PROGRESS = "in-progress"  # deferred, rate-limited or retrying: not yet with the customer
    SENT = "sent"  # accepted or delivered, no engagement yet
    ENGAGED = "engaged"  # opened or clicked: the goal
    GAVE_UP = "gave-up"  # suppressed, failed, dead


@dataclass(frozen=True, kw_only=True)
class WaveFact:
    state: WaveState
    sent_at: datetime | None = None
    until: datetime | None = None  # IN_PROGRESS: when to look again


@dataclass(frozen=True, kw_only=True)
class SendWave:
    index: int


@dataclass(frozen=True, kw_only=True)
class Wait:
    index: int
    until: datetime


@dataclass(frozen=True, kw_only=True)
class Done:
    engaged: bool
    index: int  # the engaged wave, or the last one
    reason: str


Step = SendWave | Wait | Done


def next_step(plan: FallbackPlan, facts: Sequence[WaveFact], now: datetime) -> Step:
    """What to do for `plan` at `now`, given the facts of the waves started so far (in order)."""
    for index, wave in enumerate(plan.waves):
        fact = facts[index] if index < len(facts) else WaveFact(state=WaveState.NOT_STARTED)
        if fact.state is WaveState.NOT_STARTED:
            return SendWave(index=index)
        if fact.state is WaveState.ENGAGED:
            return Done(engaged=True, index=index, reason=f"engaged on wave {index + 1} ({wave.channel})")
        if fact.state is WaveState.IN_PROGRESS:  # due again (deferral or retry time reached): send the wave again
            due = fact.until is None or fact.until <= now
            return SendWave(index=index) if due else Wait(index=index, until=fact.until or now)
        if fact.state is WaveState.SENT and fact.sent_at is not None and now < fact.sent_at + wave.wait:
            return Wait(index=index, until=fact.sent_at + wave.wait)
    last = len(plan.waves) - 1
    return Done(engaged=False, index=last, reason=f"no open or click after {len(plan.waves)} waves")
