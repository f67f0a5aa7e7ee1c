"""`marketloop experiment`: analyse any A/B file, and the experiments of campaigns and journeys (实验与复盘)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from marketloop.cli.common import AsJson, console, print_json
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.experiments.analyze import Analysis, AnalysisOptions, analyze
from marketloop.experiments.files import read_table
from marketloop.experiments.output import analysis_document

app = typer.Typer(help="Experiments (实验): A/B analysis, campaign effect and the review report (复盘).")


def parse_split(text: str | None) -> dict[str, float] | None:
    """`control=10,push=90` (weights, normalised later) into a mapping."""
    if text is None:
        return None
    split: dict[str, float] = {}
    for part in text.split(","):
        name, sep, weight = part.partition("=")
        try:
            value = float(weight)
        except ValueError:
            value = -1.0
        if not sep or not name.strip() or value <= 0:
            raise MarketloopError(
                kind=ErrorKind.INVALID,
                code="experiments.split-invalid",
                title="--planned-split is not valid",
                detail=f"{text!r}: write variant=weight pairs separated by commas, e.g. control=10,push=90",
            )
        split[name.strip()] = value
    return split


@app.command("analyze")
def analyze_file(
    data: Annotated[Path, typer.Option("--data", help="CSV (with a header) or Parquet file, one row per customer.")],
    variant_col: Annotated[str, typer.Option("--variant-col", help="Column naming each customer's variant.")],
    control: Annotated[str, typer.Option("--control", help="Value of the variant column for the control group.")],
    metric: Annotated[list[str], typer.Option("--metric", help="Metric column (repeat for more); 0/1 = a rate.")],
    covariate: Annotated[
        str | None, typer.Option("--covariate", help="Pre-period column for CUPED variance reduction.")
    ] = None,
    planned_split: Annotated[
        str | None, typer.Option("--planned-split", help="Planned shares, e.g. control=10,push=90 [default: equal].")
    ] = None,
    alpha: Annotated[float, typer.Option("--alpha", min=0.0001, max=0.5, help="Significance level.")] = 0.05,
    power: Annotated[float, typer.Option("--power", min=0.5, max=0.99, help="Power for the MDE check.")] = 0.8,
    planned_n: Annotated[
        int | None, typer.Option("--planned-n", min=2, help="Customers planned in all variants (peeking check).")
    ] = None,
    mde: Annotated[
        float | None, typer.Option("--mde", help="Relative effect the test was planned to detect, e.g. 0.05.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Per metric and variant: n, mean, lift (abs, rel) with CI, p-value, and the design checks."""
    options = AnalysisOptions(
        variant_col=variant_col,
        control=control,
        metrics=tuple(metric),
        covariate=covariate,
        planned_split=parse_split(planned_split),
        alpha=alpha,
        power=power,
        planned_n=planned_n,
        mde_rel=mde,
    )
    result = analyze(read_table(data), options)
    if as_json:
        print_json(analysis_document(result))
    else:
        print_analysis(result)


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def print_analysis(result: Analysis) -> None:
    """Tables for a terminal: one per metric, then the warnings."""
    for metric in result.metrics:
        table = Table(title=f"{metric.metric} · {metric.test}" + (" · CUPED" if metric.cuped else ""))
        for column in ("变体 variant", "n", "均值 mean", "提升 lift", "相对 rel", "CI", "p"):
            table.add_column(column, justify="right" if column != "变体 variant" else "left")
        for row in metric.variants:
            c = row.comparison
            table.add_row(
                row.variant + (" (对照)" if c is None else ""),
                str(row.n),
                _fmt(row.mean, ".4g"),
                _fmt(c.lift_abs if c else None, "+.4g"),
                _fmt(c.lift_rel if c else None, "+.2%"),
                f"[{c.ci_low:.4g}, {c.ci_high:.4g}]" if c else "—",
                _fmt(c.p_value if c else None, ".3g"),
            )
        console.print(table)
        for notice in [*metric.warnings, *(w for row in metric.variants for w in row.warnings)]:
            console.print(f"[yellow]注意[/] {notice.message}", highlight=False)
    srm = result.srm
    console.print(f"样本比例检查 (SRM): 卡方 p = {srm.p_value:.3g}" + (" [red]失衡[/]" if srm.mismatch else " 正常"))
    for notice in result.warnings:
        console.print(f"[yellow]注意[/] {notice.message}", highlight=False)
