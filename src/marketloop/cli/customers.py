"""`marketloop customers`: show a customer's 360° profile, search customers, refresh the profiles.

Personal fields are masked, as in the API; full values come with roles (M7).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

import msgspec
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, opened, print_json
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.profiles.search import SearchQuery, SearchResult
from marketloop.profiles.service import CustomerProfile

app = typer.Typer(help="Customers: the 360° profile (客户360视图), search (客户查询), refresh.", no_args_is_help=True)

TOPICS = ("natural", "assets", "liabilities", "risk", "transactions", "behaviour", "value")
Opt = typer.Option


def _builtins(value: object) -> Any:
    return msgspec.to_builtins(value)


def _cell(value: object) -> Text:
    """Values come from the bank's data: shown as plain text, never as rich markup."""
    if isinstance(value, dict):
        return Text(", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, 0)))
    return Text("" if value is None else str(value))


@app.command()
def show(
    identifier: Annotated[str, typer.Argument(help="cust_no, phone, or TYPE:VALUE (phone:…, user_id:…, device_id:…).")],
    timeline: Annotated[int, Opt("--timeline", min=0, max=200, help="Latest events to show.")] = 20,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Print a customer's profile: seven topics, identities, tags, scores, consent and timeline (exit 3: unknown)."""
    with opened(data_dir, config) as container:
        profile = container.profiles.profile(identifier, timeline_limit=timeline)
    if as_json:
        print_json(_builtins(profile))
        return
    _print_profile(profile)


def _print_profile(profile: CustomerProfile) -> None:
    data = _builtins(profile)
    when = data["as_of"] or "—"
    console.print(f"Customer {profile.cust_no}  (as of {when}, {profile.computed})", markup=False, highlight=False)
    for topic in TOPICS:
        table = Table("field", "value", title=topic, title_justify="left")
        for key, value in data[topic].items():
            table.add_row(Text(key), _cell(value))
        console.print(table)
    if profile.attributes:
        fields = Table("field", "value", title="custom fields 自定义属性", title_justify="left")
        for key, value in profile.attributes.items():
            fields.add_row(Text(key), Text(value))
        console.print(fields)
    identities = ", ".join(f"{i['type']}={i['value']}" for i in data["identities"])
    console.print(f"identities: {identities}", markup=False, highlight=False)
    events = Table("time", "event", "type", "platform", title="timeline", title_justify="left")
    for item in data["timeline"]["items"]:
        events.add_row(*(_cell(item[k]) for k in ("timestamp", "name", "type", "platform")))
    console.print(events)


@app.command()
def search(
    cust_no: Annotated[str | None, Opt("--cust-no", help="Exact customer number.")] = None,
    phone: Annotated[str | None, Opt("--phone", help="Mobile number (any spelling).")] = None,
    name: Annotated[str | None, Opt("--name", help="Start of the name: 张, 欧阳, 张三.")] = None,
    city: Annotated[str | None, Opt("--city")] = None,
    vip_level: Annotated[str | None, Opt("--vip-level", help="standard, gold, diamond, private.")] = None,
    risk: Annotated[str | None, Opt("--risk", help="Risk tolerance C1–C5.")] = None,
    branch: Annotated[str | None, Opt("--branch", help="Branch id.")] = None,
    rm: Annotated[str | None, Opt("--rm", help="Relationship manager id.")] = None,
    min_aum: Annotated[float | None, Opt("--min-aum", min=0)] = None,
    max_aum: Annotated[float | None, Opt("--max-aum", min=0)] = None,
    limit: Annotated[int, Opt("--limit", min=1, max=200)] = 20,
    offset: Annotated[int, Opt("--offset", min=0)] = 0,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Search customers by number, phone, name and filters; masked, ordered by customer number."""
    query = SearchQuery(
        cust_no=cust_no,
        phone=phone,
        name_prefix=name,
        city=city,
        vip_level=vip_level,
        risk_tolerance=risk,
        branch_id=branch,
        rm_id=rm,
        min_aum=min_aum,
        max_aum=max_aum,
        limit=limit,
        offset=offset,
    )
    with opened(data_dir, config) as container:
        result = container.profiles.search(query)
    if as_json:
        print_json(_builtins(result))
        return
    _print_hits(result)


def _print_hits(result: SearchResult) -> None:
    columns = ("cust_no", "name", "phone", "city", "vip_level", "vip_tier", "risk_tolerance", "branch_id", "rm_id")
    table = Table(*columns, "aum")
    for hit in result.items:
        table.add_row(*(_cell(getattr(hit, c)) for c in columns), Text(f"{hit.aum:,.2f}"))
    console.print(table)
    shown = f"{result.offset + 1}–{result.offset + len(result.items)}" if result.items else "none"
    console.print(f"{result.total} customers match; showing {shown}.")


def _as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="cli.invalid-as-of",
            title="--as-of is not a date or time",
            detail=f"{text!r}: use e.g. 2026-03-31 or 2026-03-31T23:59:59",
        ) from None
    if len(text) <= len("2026-03-31"):  # a date: its end of day
        parsed = datetime.combine(date.fromisoformat(text), time(23, 59, 59))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def refresh(
    as_of: Annotated[str | None, Opt("--as-of", help="Date or time the figures describe [default: now].")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Recompute every customer's profile from the bank tables and events (after imports, simulations)."""
    moment = _as_of(as_of)
    with opened(data_dir, config) as container:
        container.loader.drain()
        if as_json:
            result = container.profiles.refresh(moment)
        else:
            with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as bar:
                task = bar.add_task("refreshing profiles", total=None)

                def step(name: str, done: int, steps: int) -> None:
                    bar.update(task, description=name, completed=done, total=steps)

                result = container.profiles.refresh(moment, progress=step)
    if as_json:
        print_json(_builtins(result))
        return
    console.print(
        f"Refreshed {result.customers:,} customer profiles as of {result.as_of:%Y-%m-%d %H:%M} UTC "
        f"({result.timeline_events:,} timeline events) in {result.seconds:.1f} s."
    )
