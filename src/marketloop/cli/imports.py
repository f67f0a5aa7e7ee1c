"""`marketloop import TABLE FILE --mapping MAPPING.yaml`: load core-banking data, or preview it with `--preview`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from marketloop.app.container import Container
from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, errors, opened, print_json
from marketloop.profiles.imports import ImportRequest, ImportResult, ImportService
from marketloop.profiles.reading import LINE

STAGES = {"read": "读取 read", "clean": "清洗 clean", "protect": "加密 protect", "merge": "合并 merge"}


class _Bar:
    """Shows an import's stages as rich progress bars on stderr (stdout stays clean for --json)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: object | None = None

    def stage(self, name: str, total: int) -> None:
        self._task = self._progress.add_task(STAGES.get(name, name), total=total)

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)  # type: ignore[arg-type]


def service(container: Container) -> ImportService:
    """The container's import service: bank tables, field protection, and OneID links for customers."""
    return container.imports


def import_file(
    table: Annotated[str, typer.Argument(help="Bank table: customers, accounts, products, holdings, transactions, …")],
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file to import.")],
    mapping: Annotated[Path, typer.Option("--mapping", "-m", help="Mapping YAML (see docs/import.md).")],
    preview: Annotated[bool, typer.Option("--preview", help="Clean and check only: load nothing.")] = False,
    rows: Annotated[int, typer.Option("--rows", help="Rows to show in a preview.", min=1)] = 5,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Rejects file (default: FILE's name + .rejects.csv beside it).")
    ] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Import a core-banking export into a bank table: clean, validate, dedupe, merge (客户、账户、持仓、交易导入)."""
    request = ImportRequest(
        table=table, file=file, mapping=mapping, preview=preview, preview_rows=rows, rejects=rejects
    )
    with opened(data_dir, config) as container:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=errors, transient=True, disable=as_json) as progress:
            result = service(container).run(request, _Bar(progress))
    if as_json:
        print_json(result.summary() | ({"existing": result.existing} if preview else {}))
        return
    _show(result, preview=preview)


def _show(result: ImportResult, *, preview: bool) -> None:
    if preview:
        console.print(f"[bold]Preview[/] of {result.table} (nothing loaded): first rows as they would be stored")
        console.print(_table(_by_column(result.sample)))
    summary = result.summary()
    if preview:
        valid = result.read - result.rejected - result.duplicates
        summary |= {"would insert": valid - result.existing, "would update or keep": result.existing}
        summary = {k: v for k, v in summary.items() if k not in ("inserted", "updated", "unchanged")}
    console.print(_table(pl.DataFrame({"": list(summary), "value": [str(v) for v in summary.values()]})))
    if result.reject_sample.is_empty():
        return
    refused = result.rejected + result.duplicates
    where = f"all {refused} are in {result.rejects_file}" if result.rejects_file else "add --rejects PATH for all"
    console.print(f"First refused rows ({where}):", soft_wrap=True, highlight=False)
    console.print(_table(result.reject_sample))


def _by_column(sample: pl.DataFrame) -> pl.DataFrame:
    """One line per column and one column per row, which fits a terminal better than 20 narrow columns."""
    lines = [f"line {n}" for n in sample[LINE].to_list()] if LINE in sample.columns else []
    values = sample.drop(LINE, strict=False).with_columns(pl.all().cast(pl.String))
    return pl.DataFrame({"column": values.columns}).hstack(
        [pl.Series(line, [values[c][i] for c in values.columns], dtype=pl.String) for i, line in enumerate(lines)]
    )


def _table(frame: pl.DataFrame) -> Table:
    table = Table(*frame.columns)
    for row in frame.iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    return table
