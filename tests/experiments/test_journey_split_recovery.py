"""On the simulator's bank, a journey with a holdout recovers the effect the simulator's response model implies.

Customers who view a wealth product enter a journey that splits them between an in-app message (站内信) and a
holdout (对照组); both paths then wait a week, while the goal (a `wealth_purchase` event) watches. The simulator
plays the customers (`simulate.response.respond`, from its hidden ground truth): who reads the message (the app's
read call, an `opened` receipt in the delivery ledger) and who buys. Nobody uploads anything: the experiment the
publish registered reads assignments, touches, receipts and conversions from the journey itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import pytest

from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.core.events import Event
from marketloop.journeys.walk import split_experiment
from marketloop.simulate.response import respond
from marketloop.testing.experiments import simulated_bank

SEED = 2026
CUSTOMERS = 1_000
JOURNEY = "wealth_inapp"
TRIGGER = {"id": "browse_wealth", "kind": "event", "expect": [{"event": "view_product"}]}
WAIT = {"type": "wait", "settings": {"duration": "P7D"}, "next": {"next": "done"}}


def journey() -> dict[str, object]:
    """entry → split (in-app message / holdout, half each) → send to the message half → a week's wait; goal: buy."""
    return {
        "id": JOURNEY,
        "name": "理财浏览站内信",
        "steps": [
            {
                "id": "entry",
                "type": "entry",
                "settings": {"source": "trigger", "trigger_id": "browse_wealth"},
                "next": {"next": "split"},
            },
            {
                "id": "split",
                "type": "split",
                "settings": {"variants": [{"name": "message"}], "holdout_percent": 50},
                "next": {"message": "send", "holdout": "holdout_wait"},
            },
            {
                "id": "send",
                "type": "send",
                "settings": {"channel": "inapp", "template": "您关注的理财产品今日可购买"},
                "next": {"sent": "message_wait", "suppressed": "message_wait", "failed": "message_wait"},
            },
            {"id": "message_wait", **WAIT},
            {"id": "holdout_wait", **WAIT},
            {"id": "bought", "type": "goal", "settings": {"event": {"event": "wealth_purchase"}}},
            {"id": "done", "type": "exit"},
        ],
    }


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path / "data"))
    try:
        yield opened
    finally:
        opened.close()


def _track(container: Container, event: str, customers: Sequence[str]) -> None:
    now = datetime.now(UTC)
    records = [
        msgspec.json.encode(
            Event(
                message_id=f"{event}-{customer}",
                type="track",
                source_id="bank",
                received_at=now,
                timestamp=now,
                event=event,
                user_id=customer,
            )
        )
        for customer in customers
    ]
    asyncio.run(container.log.append(0, records))
    container.processor.drain()
    container.journey_runner.drain()


def test_a_journey_holdout_recovers_the_true_effect(container: Container) -> None:
    _, truth = simulated_bank(SEED, CUSTOMERS)
    container.triggers.save(TRIGGER)
    container.journeys.save(journey())
    container.journeys.publish(JOURNEY)
    customers = truth["cust_no"].to_list()
    _track(container, "view_product", customers)

    identity = container.identity
    one_ids = [identity.resolve(identity.identifier("user_id", customer)) or "" for customer in customers]
    inbox = container.channels.inbox
    messages = [inbox.messages(one_id) for one_id in one_ids]  # who the journey touched, as the app sees it
    touched = np.array([bool(found) for found in messages])
    answers = respond(truth, touched, "inapp", seed=SEED)
    for one_id, found, opened in zip(one_ids, messages, answers.opened, strict=True):
        if opened:
            inbox.read(one_id, found[0].id)
    _track(container, "wealth_purchase", [c for c, bought in zip(customers, answers.converted, strict=True) if bought])

    experiment_id = split_experiment(JOURNEY, "split", "")
    listed = {e.experiment_id: e for e in container.experiments.list()}
    assert listed[experiment_id].journey_id == JOURNEY
    assert listed[experiment_id].kind == "journey-split"
    assert listed[experiment_id].control == "holdout"
    results = container.experiments.results(experiment_id)

    funnel = {row.variant: row for row in results.funnel}
    treated, held_out = funnel["message"], funnel["holdout"]
    assert treated.targeted + held_out.targeted == CUSTOMERS
    assert treated.targeted == treated.stages["sent"] == int(touched.sum())
    assert treated.stages["opened"] == treated.stages["delivered"] == int(answers.opened.sum())
    assert held_out.stages["sent"] == 0
    assert treated.stages["converted"] == int(answers.converted[touched].sum())
    assert held_out.stages["converted"] == int(answers.converted[~touched].sum())
    assert not results.analysis.srm.mismatch
    rate = results.analysis.metrics[0].variants[1]
    assert rate.variant == "message"
    assert rate.comparison is not None
    print(  # the recovery result, for the issue note (pytest -s)
        f"journey split recovery: true effect {answers.true_effect:+.4f}, estimate {rate.comparison.lift_abs:+.4f}, "
        f"{1 - results.analysis.alpha:.0%} CI [{rate.comparison.ci_low:+.4f}, {rate.comparison.ci_high:+.4f}]"
    )
    assert rate.comparison.ci_low <= answers.true_effect <= rate.comparison.ci_high
