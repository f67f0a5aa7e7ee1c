"""The example triggers of examples/triggers (the domain's scenarios) parse, and fire as documented on events.json."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from marketloop.journeys.dryrun import dry_run
from marketloop.journeys.service import parse_test_events
from marketloop.journeys.triggers import parse_trigger

EXAMPLES = Path(__file__).parents[2] / "examples" / "triggers"
UNTIL = datetime(2026, 12, 31, tzinfo=UTC)
EXPECTED = {
    "wealth-interest-no-purchase": [("C0001", "absence", datetime(2026, 11, 24, 1, 12, tzinfo=UTC))],
    "large-transfer-out": [("C0003", "event", datetime(2026, 11, 24, 2, 0, tzinfo=UTC))],
    "aum-down-30": [("C0003", "attribute", datetime(2026, 11, 24, 2, 5, tzinfo=UTC))],
    "maturity-in-7-days": [("C0004", "date", datetime(2026, 12, 1, 1, 30, tzinfo=UTC))],
    "birthday": [("C0003", "date", datetime(2026, 12, 2, 1, 0, tzinfo=UTC))],
    "new-customer-no-investment": [],
    "monthly-active-push": [  # from the first event (1 November, 00:00 in Shanghai) to the end of the year
        ("*", "schedule", datetime(2026, 11, 1, 2, 0, tzinfo=UTC)),
        ("*", "schedule", datetime(2026, 12, 1, 2, 0, tzinfo=UTC)),
    ],
    "rm-referral": [],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_fires_as_documented(name: str) -> None:
    trigger = parse_trigger((EXAMPLES / f"{name}.json").read_bytes())
    assert trigger.id == name
    events = parse_test_events((EXAMPLES / "events.json").read_bytes())
    fires = dry_run(trigger, events, until=UNTIL).fires
    assert [(f.customer, f.reason, f.at) for f in fires] == EXPECTED[name]


def test_every_example_is_covered() -> None:
    assert {p.stem for p in EXAMPLES.glob("*.json")} - {"events"} == set(EXPECTED)
