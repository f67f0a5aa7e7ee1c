"""`marketloop customers erase` and `marketloop events purge`: erasure and retention of personal data.

Both are registered on their groups by `marketloop.cli.governance_commands.register`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from marketloop.app.governance import personal_data
from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, opened, print_json


def erase(
    cust_no: Annotated[str, typer.Argument(help="Customer number.")],
    reason: Annotated[str, typer.Option(help="Why (request, ticket number); kept in the audit log.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Remove a customer's personal data (name, phone, ID, email, identifiers, personal event fields).

    Rows stay, keyed by the customer number, so counts and other anonymous aggregates stay right.
    Cannot be undone; running it again changes nothing more. Stop `marketloop serve` first.
    """
    if not yes:
        typer.confirm(f"Erase the personal data of customer {cust_no}? This cannot be undone", abort=True)
    with opened(data_dir, config) as container:
        result = personal_data(container, container.audit).erase(cust_no, reason=reason)
    counts = result.counts
    if as_json:
        print_json(
            {
                "cust_no": result.cust_no,
                "customer_rows": counts.customer_rows,
                "identities": counts.identities,
                "events": counts.events,
                "audit_seq": result.audit_seq,
            }
        )
        return
    console.print(
        f"customer {result.cust_no}: {counts.customer_rows} customer row cleared, {counts.identities} identifiers "
        f"deleted, {counts.events} events scrubbed (audit seq {result.audit_seq})"
    )


def purge_events(
    older_than: Annotated[
        int | None, typer.Option("--older-than", min=1, help="Days to keep [default: retention.raw_event_days].")
    ] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Delete raw events older than the retention window; their counts per day are kept in event_daily_counts."""
    with opened(data_dir, config) as container:
        days = older_than or container.settings.retention.raw_event_days
        container.loader.drain()
        result = personal_data(container, container.audit).purge_events(older_than_days=days)
    counts = result.counts
    if as_json:
        print_json(
            {
                "before": result.before.isoformat(),
                "events": counts.events,
                "violations": counts.violations,
                "quarantined": counts.quarantined,
            }
        )
        return
    console.print(
        f"deleted {counts.events} events, {counts.violations} violations and {counts.quarantined} released "
        f"quarantined events from before {result.before.isoformat()}"
    )
