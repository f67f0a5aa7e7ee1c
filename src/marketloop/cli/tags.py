"""`marketloop tags`: list, show, create and import tags (标签), refresh them, and install the starter library.

A rule definition file is TOML or JSON with `when` (a yes / no tag) or
`cases` and `else` (a value tag); conditions in the segment language.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, NoReturn

import msgspec
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from marketloop.cli.common import AsJson, ConfigFile, DataDir, as_of_time, console, errors, opened, print_json
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.tags import Snapshots, TagCategory, TagKind, TagVersion
from marketloop.segments.errors import DefinitionError
from marketloop.tags.definitions import TagDraft
from marketloop.tags.imports import read_customer_list

app = typer.Typer(help="Tags (标签): list, show, create, import, refresh.", no_args_is_help=True)
Opt = typer.Option
Name = Annotated[str, typer.Argument(help="The tag name, e.g. payroll_customer.")]
AsOf = Annotated[str | None, Opt("--as-of", help="ISO date or time [default: now].")]


def _bad_definition(where: str, error: DefinitionError) -> NoReturn:
    for problem in error.problems:
        spot = problem.position
        text = str(spot.pointer or "/") if spot else "/"
        if spot is not None and spot.line is not None:
            text += f" {spot.line}:{spot.column}"
        errors.print(Text(f"{where}:{text}: {problem.message} [{problem.code}]"), soft_wrap=True)
    raise typer.Exit(2)


def _plain(tag: TagVersion) -> dict[str, Any]:
    found: dict[str, Any] = msgspec.to_builtins(tag)
    return found


@app.command("list")
def list_tags(
    category: Annotated[str | None, Opt("--category", help="Only this profile topic.")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """List the tags (newest version of each) with their last coverage."""
    with opened(data_dir, config) as container:
        tags = [t for t in container.tags.list() if category is None or t.category.value == category]
        stats = container.tags.last_stats()
    if as_json:
        print_json([_plain(t) | {"coverage": _coverage(stats.get(t.name))} for t in tags])
        return
    table = Table("name", "title", "kind", "category", "v", "customers", "values")
    for tag in tags:
        last = stats.get(tag.name)
        covered = f"{last.customers:,} ({last.coverage:.0%})" if last else "—"
        cells = (tag.name, tag.title, tag.kind.value, tag.category.value, str(tag.version), covered)
        table.add_row(*(Text(c) for c in cells), Text(", ".join(tag.values)))
    console.print(table)
    console.print(f"{len(tags)} tags")


def _coverage(stats: Any) -> dict[str, Any] | None:
    if stats is None:
        return None
    return {"as_of": stats.as_of.isoformat(), "customers": stats.customers, "population": stats.population,
            "coverage": round(stats.coverage, 4), "distribution": stats.distribution}  # fmt: skip


@app.command()
def show(
    name: Name,
    version: Annotated[int | None, Opt("--version", min=1)] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Show a tag: definition, lineage, versions and coverage of its last refreshes."""
    with opened(data_dir, config) as container:
        tag = container.tags.get(name, version)
        versions = container.tags.versions(name)
        stats = container.tags.coverage(name, limit=5)
    if as_json:
        print_json(_plain(tag) | {"versions": [v.version for v in versions], "coverage": [_coverage(s) for s in stats]})
        return
    console.print(Text(f"{tag.name} — {tag.title}  (version {tag.version} of {len(versions)}, {tag.kind.value})"))
    for key in ("category", "owner", "business_line", "description"):
        console.print(Text(f"  {key}: {getattr(tag, key)}"))
    console.print(Text(f"  shared with: {', '.join(tag.shared_with) or '—'}"))
    console.print(Text(f"  reads: {', '.join(tag.lineage.relations)}; events: {', '.join(tag.lineage.events) or '—'}"))
    console.print(Text(f"  tags read: {', '.join(tag.lineage.tags) or '—'}"))
    if tag.definition is not None:
        console.print(Text(json.dumps(tag.definition, ensure_ascii=False, indent=2)))
    for s in stats:
        console.print(
            Text(f"  {s.as_of:%Y-%m-%d %H:%M}: {s.customers:,}/{s.population:,} ({s.coverage:.1%}) {s.distribution}")
        )


@app.command()
def refresh(
    tag: Annotated[
        list[str] | None, Opt("--tag", help="Refresh only this tag (repeatable); always recomputed.")
    ] = None,
    full: Annotated[bool, Opt("--full", help="Recompute every tag, changed inputs or not.")] = False,
    as_of: AsOf = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Recompute the rule tags whose definition or inputs changed since their last refresh."""
    with opened(data_dir, config) as container:
        container.loader.drain()
        if as_json:
            report = container.tags.refresh(as_of=as_of_time(as_of), only=tag, full=full)
        else:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=console) as bar:
                task = bar.add_task("tags", total=None)

                def step(done: int, total: int, what: str) -> None:
                    bar.update(task, description=what[:60], completed=done, total=total)

                report = container.tags.refresh(as_of=as_of_time(as_of), only=tag, full=full, progress=step)
    seconds = (report.run.finished_at - report.run.started_at).total_seconds()
    if as_json:
        print_json({"run_id": report.run.run_id, "as_of": report.run.as_of.isoformat(),
                    "refreshed": list(report.run.refreshed), "skipped": list(report.run.skipped),
                    "changed": sum(s.changed for s in report.stats), "snapshots": report.snapshots,
                    "seconds": round(seconds, 3)})  # fmt: skip
        return
    console.print(
        f"Refreshed {len(report.run.refreshed)} tags ({sum(s.changed for s in report.stats):,} values changed), "
        f"skipped {len(report.run.skipped)} unchanged, in {seconds:.1f} s."
    )


def _definition(file: Path | None) -> dict[str, Any] | None:
    if file is None:
        return None
    try:
        text = file.read_text(encoding="utf-8")
        found: dict[str, Any] = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (OSError, ValueError) as error:
        raise MarketloopError(
            kind=ErrorKind.INVALID, code="cli.unreadable-file", title=f"Cannot read {file}", detail=str(error)
        ) from None
    return found


@app.command()
def create(
    name: Name,
    title: Annotated[str, Opt("--title", help="What marketers call it, e.g. 代发客户.")],
    category: Annotated[TagCategory, Opt("--category", help="The profile topic.")],
    kind: Annotated[TagKind, Opt("--kind")] = TagKind.STATIC,
    definition: Annotated[Path | None, Opt("--definition", help="Rule tags: TOML or JSON file.")] = None,
    description: Annotated[str, Opt("--description")] = "",
    owner: Annotated[str, Opt("--owner")] = "marketloop",
    business_line: Annotated[str, Opt("--business-line")] = "retail",
    share_with: Annotated[list[str] | None, Opt("--share-with", help="Business line (repeatable; * for all).")] = None,
    values: Annotated[str, Opt("--values", help="Comma-separated values of a value tag.")] = "",
    snapshots: Annotated[Snapshots, Opt("--snapshots")] = Snapshots.NONE,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Create a tag, or the next version of the tag of that name (static lists by default)."""
    draft = TagDraft(
        name=name, title=title, kind=kind, category=category, description=description, owner=owner,
        business_line=business_line, shared_with=tuple(share_with or ()), definition=_definition(definition),
        values=tuple(v.strip() for v in values.split(",") if v.strip()), snapshots=snapshots,
    )  # fmt: skip
    with opened(data_dir, config) as container:
        try:
            saved = container.tags.create(draft)
        except DefinitionError as error:
            _bad_definition(str(definition or name), error)
    if as_json:
        print_json(_plain(saved))
        return
    console.print(Text(f"Saved {saved.name} version {saved.version} ({saved.kind.value}): {saved.title}"))


@app.command("import")
def import_list(
    name: Name,
    file: Annotated[Path, typer.Argument(help="CSV (header cust_no[,value]) or Parquet.")],
    as_of: AsOf = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Replace a static (or model) tag's values with an uploaded customer list; unknown customers are reported."""
    listed = read_customer_list(file)
    with opened(data_dir, config) as container:
        result = container.tags.import_values(name, listed.values, as_of=as_of_time(as_of))
    summary = {"tag": name, "customers": result.change.customers, "changed": result.change.changed,
               "rejected_customers": result.rejected, "bad_lines": listed.bad_lines}  # fmt: skip
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"{name}: {result.change.customers:,} customers ({result.change.changed:,} changed); "
            f"{len(result.rejected)} unknown customers, {len(listed.bad_lines)} bad lines."
        )
        for cust_no in result.rejected[:20]:
            errors.print(Text(f"  unknown customer {cust_no}"))
    if result.rejected or listed.bad_lines:
        raise typer.Exit(1)


@app.command("install")
def install_library(data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """Install or update the starter library (标签库): new tags, and new versions of changed ones."""
    with opened(data_dir, config) as container:
        saved = container.tags.install_library()
    if as_json:
        print_json([_plain(t) for t in saved])
        return
    console.print(f"{len(saved)} starter tags installed or updated.")
