"""`marketloop analytics`: run a spec, show its SQL, list the customers of a cell, save and rerun analyses.

A spec file is the JSON the API takes (see docs/analytics.md). A bad spec
prints each problem as `FILE: /pointer: message` and exits with code 2.
`marketloop analytics alerts …` keeps and checks metric alert rules.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from marketloop.analytics.parse import SpecError
from marketloop.cli import analytics_alerts
from marketloop.cli.analytics_common import AsOf, SpecFile, bad_spec, load, plain, show_result
from marketloop.cli.common import AsJson, ConfigFile, DataDir, as_of_time, console, opened, print_json
from marketloop.core.errors import ErrorKind, MarketloopError

app = typer.Typer(help="Analyses (分析): events, funnels, retention, paths, attribution, alerts.", no_args_is_help=True)
app.add_typer(analytics_alerts.app, name="alerts")

AnalysisId = Annotated[str, typer.Argument(help="The saved analysis (ana_…).")]


@app.command()
def query(
    spec: SpecFile, as_of: AsOf = None, data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False
) -> None:
    """Run an analysis and print its result."""
    doc = load(spec)
    with opened(data_dir, config) as container:
        try:
            found = container.analytics.query(doc, as_of=as_of_time(as_of))
        except SpecError as error:
            raise bad_spec(spec, error) from None
    if as_json:
        print_json(plain(found))
        return
    show_result(found.result)
    console.print(f"[dim]{found.ms} ms, data version {found.data_version}{', cached' if found.cached else ''}[/]")


@app.command()
def sql(spec: SpecFile, as_of: AsOf = None, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Print the warehouse SQL of an analysis."""
    doc = load(spec)
    with opened(data_dir, config) as container:
        try:
            text = container.analytics.sql(doc, as_of=as_of_time(as_of))
        except SpecError as error:
            raise bad_spec(spec, error) from None
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _cell(text: str) -> dict[str, object]:
    try:
        chosen = json.loads(text)
    except json.JSONDecodeError as error:
        raise MarketloopError(
            kind=ErrorKind.INVALID, code="cli.invalid-cell", title="--cell is not JSON", detail=error.msg
        ) from None
    if not isinstance(chosen, dict):
        raise MarketloopError(kind=ErrorKind.INVALID, code="cli.invalid-cell", title="--cell is a JSON object")
    return chosen


@app.command()
def customers(
    spec: SpecFile,
    cell: Annotated[str, typer.Option("--cell", help='The cell as the result gave it: \'{"grp": "all", "step": 3}\'.')],
    dropped: Annotated[bool, typer.Option("--dropped", help="Funnels: reached this step, not the next.")] = False,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    offset: Annotated[int, typer.Option("--offset")] = 0,
    as_of: AsOf = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """List the customers behind one number of a result (masked)."""
    doc, chosen = load(spec), _cell(cell)
    with opened(data_dir, config) as container:
        try:
            page = container.analytics.customers(
                doc, chosen, as_of=as_of_time(as_of), dropped=dropped, limit=limit, offset=offset
            )
        except SpecError as error:
            raise bad_spec(spec, error) from None
    if as_json:
        print_json(plain(page))
        return
    table = Table(title=f"{page.total} customers")
    for column in ("cust_no", "name", "phone", "city", "vip_level"):
        table.add_column(column)
    for hit in page.items:
        table.add_row(hit.cust_no, hit.name or "", hit.phone or "", hit.city or "", hit.vip_level or "")
    console.print(table)


@app.command()
def save(
    spec: SpecFile,
    name: Annotated[str, typer.Option("--name", help="What analysts call it.")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Save an analysis under a name (its range stays as written: {"last": "30d"} is the last 30 days of each run)."""
    doc = load(spec)
    with opened(data_dir, config) as container:
        try:
            saved = container.analyses.save(name, doc)
        except SpecError as error:
            raise bad_spec(spec, error) from None
    if as_json:
        print_json(plain(saved))
        return
    console.print(f"saved {saved.analysis_id} ({saved.name})")


@app.command("list")
def list_saved(data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """The saved analyses."""
    with opened(data_dir, config) as container:
        found = container.analyses.list()
    if as_json:
        print_json(plain(found))
        return
    table = Table(title="saved analyses")
    for column in ("id", "name", "model", "created"):
        table.add_column(column)
    for saved in found:
        table.add_row(saved.analysis_id, saved.name, str(saved.spec.get("model")), saved.created_at.isoformat())
    console.print(table)


@app.command()
def delete(analysis_id: AnalysisId, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Forget a saved analysis."""
    with opened(data_dir, config) as container:
        container.analyses.delete(analysis_id)
    console.print(f"deleted {analysis_id}")


@app.command()
def run(
    analysis_id: AnalysisId,
    as_of: AsOf = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Run a saved analysis."""
    with opened(data_dir, config) as container:
        try:
            found = container.analyses.run(analysis_id, as_of=as_of_time(as_of))
        except SpecError as error:
            raise bad_spec(analysis_id, error) from None
    if as_json:
        print_json(plain(found))
        return
    show_result(found.result)
