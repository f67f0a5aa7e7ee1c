"""`marketloop analytics alerts`: check a rule file, keep rules, run every kept rule once a day (指标预警).

`run` is the daily job (cron, or the scheduler when it lands): a rule
already checked for the day is skipped, so running it twice sends nothing
twice. Exit code 1 when a webhook or the SMTP server did not take an alert;
2 for a bad rule (an unknown key, a bad e-mail address, e-mail without an
SMTP server).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from marketloop.analytics.alerts import AlertCheck, read_rule
from marketloop.analytics.parse import SpecError
from marketloop.cli.analytics_common import bad_spec, load, plain
from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, errors, opened, print_json
from marketloop.core.errors import ErrorKind, MarketloopError

app = typer.Typer(
    help="指标预警 Metric alerts: thresholds and anomalies on daily series, to a webhook and / or e-mail.",
    no_args_is_help=True,
)

RuleFile = Annotated[Path, typer.Argument(help="The alert rule (JSON).")]
Day = Annotated[str | None, typer.Option("--day", help="The day to check [default: yesterday, UTC].")]


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise MarketloopError(
            kind=ErrorKind.INVALID, code="cli.invalid-day", title="--day is not a date", detail=repr(text)
        ) from None


def _report(found: list[AlertCheck], as_json: bool) -> None:
    if as_json:
        print_json(plain(found))
    for check in [] if as_json else found:
        state = "ALERT" if check.verdict.alert else "ok"
        console.print(f"{check.rule} {check.day}: {check.value:g} — {state}: {check.verdict.reason}", markup=False)
    failed = [(c.rule, c.delivery.error) for c in found if c.delivery is not None and not c.delivery.ok]
    for rule, error in failed:
        errors.print(f"{rule}: 预警未送达 the alert was not delivered: {error}", markup=False)
    if failed:
        raise typer.Exit(1)


@app.command()
def check(
    rule: RuleFile, day: Day = None, data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False
) -> None:
    """Check a rule file on one day; post to its webhook and e-mail its recipients when it fires."""
    checked = _day(day)
    doc = load(rule)
    try:
        read_rule(doc)  # a bad rule fails before the data directory is opened
    except SpecError as error:
        raise bad_spec(rule, error) from None
    with opened(data_dir, config) as container:
        try:
            found = container.alerts.check(container.alerts.read(doc), day=checked)
        except SpecError as error:
            raise bad_spec(rule, error) from None
    _report([found], as_json)


@app.command()
def add(rule: RuleFile, data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """Keep a rule, to be checked by `run` every day."""
    doc = load(rule)
    with opened(data_dir, config) as container:
        try:
            stored = container.alerts.add(doc)
        except SpecError as error:
            raise bad_spec(rule, error) from None
    if as_json:
        print_json(plain(stored))
        return
    console.print(f"kept {stored.rule_id} ({stored.name})")


@app.command("list")
def list_rules(data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """The kept rules."""
    with opened(data_dir, config) as container:
        found = container.alerts.stored()
    if as_json:
        print_json(plain(found))
        return
    table = Table(title="alert rules")
    for column in ("id", "name", "kind", "enabled", "webhook", "email"):
        table.add_column(column)
    for stored in found:
        rule = stored.rule
        email = ", ".join(rule.get("email") or [])
        table.add_row(
            stored.rule_id, stored.name, str(rule.get("kind")), str(stored.enabled), rule.get("webhook") or "", email
        )
    console.print(table)


@app.command()
def delete(
    rule_id: Annotated[str, typer.Argument(help="The kept rule (alr_…).")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Forget a kept rule and its daily checks."""
    with opened(data_dir, config) as container:
        container.alerts.delete(rule_id)
    console.print(f"deleted {rule_id}")


@app.command("run")
def run_all(day: Day = None, data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """Check every kept rule on the day (default: yesterday) unless already checked for that day."""
    checked = _day(day)
    with opened(data_dir, config) as container:
        found = container.alerts.run(day=checked)
    _report(found, as_json)
