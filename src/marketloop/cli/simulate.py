"""`marketloop simulate`: fill the data directory with a synthetic bank and its hidden ground truth.

Also `simulate_demo_bank`, which `marketloop demo` calls on an empty data directory.
"""

from __future__ import annotations

import asyncio
import os
from datetime import date, datetime, timedelta
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from marketloop.app.container import Container
from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, opened, print_json
from marketloop.core.bank import CUSTOMERS
from marketloop.simulate import run

DEMO_CUSTOMERS = 100_000
DEMO_DAYS = 30
DEMO_SEED = 42

Customers = Annotated[int, typer.Option("--customers", min=1, help="How many customers the bank has.")]
Days = Annotated[int, typer.Option("--days", min=1, help="How many days of balances, transactions and events.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same bank.")]
End = Annotated[
    datetime | None,
    typer.Option("--end", formats=["%Y-%m-%d"], help="Last simulated day [default: yesterday, China time]."),
]
Force = Annotated[
    bool,
    typer.Option("--force", help="Re-apply the same simulation to a data directory that has it (idempotent, resumes)."),
]
# Chunks are simulated in worker processes while this one loads the previous chunk (OneID, warehouse):
# on two cores the two overlap.
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))
Workers = Annotated[
    int, typer.Option("--workers", min=1, help="Processes that simulate chunks of customers [default: cores, ≤ 4].")
]


def _yesterday(container: Container) -> date:
    """The last full day in China Standard Time, so that every simulated moment lies in the past."""
    return (container.clock.now() + timedelta(hours=8)).date() - timedelta(days=1)


def _target(container: Container) -> run.Target:
    return run.Target(
        bank=container.bank,
        log=container.log,
        loader=container.loader,
        sources=container.sources,
        cipher=container.cipher,
        data_dir=container.settings.data_dir,
    )


def run_simulation(
    container: Container, plan: run.Plan, *, force: bool, workers: int, load: bool, show: bool
) -> run.Summary:
    """Run `plan` into the container's stores with a progress bar (when `show`)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not show, transient=False) as bar:
        task = bar.add_task("simulating", total=plan.customers)

        def report(step: run.Progress) -> None:
            bar.update(task, completed=step.done, description=f"{step.stage}: {step.events:,} events")

        return asyncio.run(
            run.simulate(_target(container), plan, force=force, workers=workers, load=load, progress=report)
        )


def simulate_demo_bank(container: Container) -> None:
    """On a data directory without customers, simulate the demo bank; its events load while the server runs."""
    if container.bank.count(CUSTOMERS) > 0:
        return
    plan = run.Plan(customers=DEMO_CUSTOMERS, days=DEMO_DAYS, seed=DEMO_SEED, end=_yesterday(container))
    console.print(f"Simulating a demo bank: {plan.customers:,} customers, {plan.days} days (seed {plan.seed}) …")
    summary = run_simulation(container, plan, force=False, workers=DEFAULT_WORKERS, load=False, show=True)
    console.print(
        f"Demo bank ready in {summary.seconds:.0f} s: {summary.events:,} events are loading in the background."
    )


def _print_summary(summary: run.Summary) -> None:
    table = Table("table", "rows", title=f"Simulated bank (seed {summary.plan.seed})")
    for name, count in summary.rows.items():
        table.add_row(name, f"{count:,}")
    table.add_row("events", f"{summary.events:,}")
    console.print(table)
    console.print(
        f"{summary.seconds:.1f} s ({summary.load_seconds:.1f} s loading events). Ground truth: {summary.ground_truth}"
    )


def simulate(
    customers: Customers = 10_000,
    days: Days = 30,
    seed: Seed = 42,
    end: End = None,
    force: Force = False,
    workers: Workers = DEFAULT_WORKERS,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Simulate a bank: customers, products, balances, transactions, payroll, behaviour events, ground truth.

    Refuses a data directory that already has customers; --force re-applies the same
    simulation (same --customers, --days, --seed and --end) without duplicating anything.
    """
    with opened(data_dir, config) as container:
        last = end.date() if end is not None else _yesterday(container)
        plan = run.Plan(customers=customers, days=days, seed=seed, end=last)
        summary = run_simulation(container, plan, force=force, workers=workers, load=True, show=not as_json)
    if as_json:
        print_json(summary.as_dict())
    else:
        _print_summary(summary)
