"""Journey fault test: SIGKILL `marketloop serve` while 100k customers flow through a multi-step journey.

What it does (the run itself is `marketloop.testing.journey_faults`, which the
scaled-down test in tests/integration/test_journey_faults.py runs too):

1. starts a fake push gateway and SMS gateway on a local port (threaded HTTP,
   signature and API key checked, de-duplicating by `requestId` / `msgId` as
   real gateways do) and a real `marketloop serve` on a temp data directory
   whose `[channels.push]` / `[channels.sms]` point at them;
2. publishes, over HTTP with an approved maker-checker request, the journey
   API entry → push → wait `--wait-seconds` → SMS → exit (purpose `service`,
   so consent, quiet hours and caps let every touch through);
3. lets `--customers` customers in with `--requests` calls to
   `POST /v1/journeys/{id}/entries` (a call cut by a kill is sent again with the
   same key), and meanwhile kills the server with SIGKILL `--kills` times at
   random (seeded) moments while touches reach the gateways, restarting it on
   the same data directory each time;
4. waits until every customer's run ended, stops the server with SIGTERM and
   compares the outbox (`journey_outbox`), the delivery ledger
   (`channel_deliveries`) and what the gateways received with the expected
   touches (one push and one SMS per customer).

Prints one JSON line: `lost` and `duplicated` must be 0 (exit status 1
otherwise). `provider_received_raw - provider_distinct_keys` (`resent`) is how
many requests reached a gateway again for a key it already had: sends a kill
cut between the gateway's answer and the ledger's record, sent again once the
claim went stale (`claim_stale_seconds`); the gateway's de-duplication by key
keeps them from reaching the customer twice. A correctness run, not a timing
figure: `seconds` includes the restarts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from marketloop.testing.journey_faults import FaultPlan, run_faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--requests", type=int, default=10, help="entry requests the customers are split into")
    parser.add_argument("--wait-seconds", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it (data, server logs)")
    args = parser.parse_args()
    plan = FaultPlan(
        customers=args.customers,
        kills=args.kills,
        entry_requests=args.requests,
        wait_seconds=args.wait_seconds,
        seed=args.seed,
    )
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run_faults(args.keep, plan)
    else:
        with tempfile.TemporaryDirectory(prefix="journey-faults-") as workdir:
            result = run_faults(Path(workdir), plan)
    print(json.dumps(result.line()))
    for problem in result.problems:
        print(problem, file=sys.stderr)
    if result.lost or result.duplicated or result.unexpected or result.stop_code != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
