"""Running a multi-wave fallback plan (多波次触达) through the send service, one call per journey wake-up.

Wave n of a touch uses the key `<key>:w<n>`; what became of each wave is read
back from the delivery ledger and the contact history, so the plan needs no
state of its own and survives restarts. The journey engine calls `advance`
when the step is reached and again at each returned `Wait.until`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from marketloop.journeys.channels.fallback import FallbackPlan, SendWave, Step, Wait, WaveFact, WaveState, next_step
from marketloop.journeys.channels.sending import SendOutcome, SendRequest
from marketloop.journeys.channels.service import SendService
from marketloop.journeys.policy.service import ContactPolicyService
from marketloop.ports.channels import ENGAGED, Delivery, DeliveryLedger, DeliveryStatus
from marketloop.ports.clock import Clock
from marketloop.ports.contact_policy import Outcome

SENT_STATES = frozenset({DeliveryStatus.ACCEPTED, DeliveryStatus.DELIVERED, DeliveryStatus.UNSUBSCRIBED})


@dataclass(frozen=True, kw_only=True)
class FallbackProgress:
    step: Step  # Wait (call again at `until`) or Done
    outcomes: tuple[SendOutcome, ...] = ()  # the sends made by this call


class FallbackRunner:
    def __init__(self, sends: SendService, ledger: DeliveryLedger, policy: ContactPolicyService, clock: Clock) -> None:
        self._sends = sends
        self._ledger = ledger
        self._policy = policy
        self._clock = clock

    def advance(self, request: SendRequest, plan: FallbackPlan) -> FallbackProgress:
        """Send every wave that is due now (a suppressed or failed wave falls through to the next at once)."""
        outcomes: list[SendOutcome] = []
        step = next_step(plan, self._facts(request, plan), self._clock.now())
        for _ in range(2 * len(plan.waves)):
            if not isinstance(step, SendWave):
                break
            wave = plan.waves[step.index]
            wave_request = replace(request, idempotency_key=wave_key(request, step.index), channel=wave.channel)
            outcomes.append(self._sends.send(wave_request))
            step = next_step(plan, self._facts(request, plan), self._clock.now())
            if isinstance(step, SendWave) and outcomes[-1].idempotency_key == wave_key(request, step.index):
                # the same wave is due again at once (throttled, or in flight elsewhere): look again later
                step = Wait(index=step.index, until=outcomes[-1].retry_at or self._clock.now())
                break
        return FallbackProgress(step=step, outcomes=tuple(outcomes))

    def _facts(self, request: SendRequest, plan: FallbackPlan) -> list[WaveFact]:
        return [self._fact(request, index) for index in range(len(plan.waves))]

    def _fact(self, request: SendRequest, index: int) -> WaveFact:
        key = wave_key(request, index)
        delivery = self._ledger.get(key)
        if delivery is not None:
            return _delivery_fact(delivery)
        decision = self._policy.decision_for(request.customer, key)
        if decision is None:
            return WaveFact(state=WaveState.NOT_STARTED)
        if decision.outcome is Outcome.SUPPRESS or not decision.active:
            return WaveFact(state=WaveState.GAVE_UP)
        return WaveFact(state=WaveState.IN_PROGRESS, until=decision.effective_at)


def wave_key(request: SendRequest, index: int) -> str:
    return f"{request.idempotency_key.strip()}:w{index}"


def _delivery_fact(delivery: Delivery) -> WaveFact:
    if delivery.status in ENGAGED:
        return WaveFact(state=WaveState.ENGAGED, sent_at=delivery.created_at)
    if delivery.status in SENT_STATES:
        return WaveFact(state=WaveState.SENT, sent_at=delivery.created_at)
    if delivery.status in (DeliveryStatus.RETRYING, DeliveryStatus.PENDING):
        return WaveFact(state=WaveState.IN_PROGRESS, until=delivery.retry_at or delivery.updated_at)
    return WaveFact(state=WaveState.GAVE_UP)
