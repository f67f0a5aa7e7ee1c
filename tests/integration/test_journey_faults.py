"""Journey touches survive SIGKILL: no send lost, none duplicated (the scaled-down `benchmarks/journey_faults.py`).

2,000 customers go through API entry → push → wait → SMS → exit in a real
`marketloop serve` that is killed twice while the touches reach a fake push and
SMS gateway on a local port; after the last restart and a graceful stop, the
outbox, the delivery ledger and the gateways must each hold every expected
touch exactly once. The kill moments are random (seeded); the assertions do
not depend on where they fall.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from marketloop.testing.journey_faults import FaultPlan, run_faults

pytestmark = pytest.mark.slow

CUSTOMERS = 2_000
KILLS = 2


def test_no_touch_lost_or_duplicated_across_sigkills(tmp_path: Path) -> None:
    result = run_faults(tmp_path, FaultPlan(customers=CUSTOMERS, kills=KILLS, entry_requests=4, finish_timeout=120))

    print(f"\njourney fault test: {result.line()}")
    assert result.kill_codes == [-signal.SIGKILL] * KILLS
    assert result.stop_code == 0
    assert result.problems == []
    assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0)
    assert result.expected_sends == 2 * CUSTOMERS
    assert result.outbox_rows == result.ledger_rows == result.provider_distinct_keys == 2 * CUSTOMERS
    assert result.provider_received_raw == result.provider_distinct_keys + result.resent
