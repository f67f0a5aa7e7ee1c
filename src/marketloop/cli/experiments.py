"""`marketloop experiment`: analyse any A/B file, and the experiments of campaigns and journeys (实验与复盘)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, fail, opened, print_json
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.experiments.analyze import Analysis, AnalysisOptions, analyze
from marketloop.experiments.files import read_table
from marketloop.experiments.output import analysis_document, experiment_document, period_document, results_document
from marketloop.experiments.report import render_html
from marketloop.experiments.service import ExperimentSpec
from marketloop.experiments.workbook import write_workbook

app = typer.Typer(
    help="Experiments (实验): A/B analysis, campaign effect and the review report (复盘).", no_args_is_help=True
)


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
    previous_look: Annotated[
        list[int] | None,
        typer.Option("--previous-look", min=1, help="Customers at an earlier look (repeat); with --planned-n."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Per metric and variant: n, mean, lift (abs, rel) with CI, p-value, and the design checks."""
    if previous_look and planned_n is None:
        fail("--previous-look needs --planned-n (the looks are fractions of the planned size)", code=2)
    options = AnalysisOptions(
        variant_col=variant_col,
        control=control,
        metrics=tuple(metric),
        covariate=covariate,
        planned_split=parse_split(planned_split),
        alpha=alpha,
        power=power,
        planned_n=planned_n,
        previous_looks=tuple(previous_look or ()),
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


ExperimentId = Annotated[str, typer.Argument(help="The experiment id (exp_…).")]
Cuped = Annotated[bool, typer.Option("--cuped", help="CUPED with the pre-period revenue / AUM as covariate.")]


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Name shown in the report (中文可).")],
    control: Annotated[str, typer.Option("--control", help="The control / holdout variant.")],
    variant: Annotated[list[str], typer.Option("--variant", help="variant=weight, repeat per variant (control too).")],
    goal: Annotated[str, typer.Option("--goal", help="Conversion goal counted (customer_conversions.goal).")],
    window_days: Annotated[int, typer.Option("--window-days", min=1, help="Days after assignment counted.")] = 30,
    campaign: Annotated[str, typer.Option("--campaign", help="Campaign / strategy, for comparisons.")] = "",
    experiment_id: Annotated[str | None, typer.Option("--id", help="Experiment id [default: generated].")] = None,
    planned_n: Annotated[int | None, typer.Option("--planned-n", min=2, help="Customers planned in all.")] = None,
    mde: Annotated[float | None, typer.Option("--mde", help="Relative effect it is planned to detect.")] = None,
    holdout: Annotated[
        bool, typer.Option("--holdout", help="The control is a holdout (对照组) of a campaign.")
    ] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Register an experiment (a journey registers its own split or holdout the same way)."""
    shares = parse_split(",".join(variant)) or {}
    spec = ExperimentSpec(
        name=name,
        control=control,
        variants=shares,
        goal=goal,
        window_days=window_days,
        campaign=campaign,
        kind="holdout" if holdout else "ab",
        experiment_id=experiment_id,
        planned_n=planned_n,
        mde_rel=mde,
    )
    with opened(data_dir, config) as container:
        experiment = container.experiments.create(spec)
    if as_json:
        print_json(experiment_document(experiment))
    else:
        console.print(f"实验已创建 experiment created: [bold]{experiment.experiment_id}[/]")


@app.command("list")
def list_experiments(data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """Every experiment, newest first."""
    with opened(data_dir, config) as container:
        found = container.experiments.list()
    if as_json:
        print_json([experiment_document(e) for e in found])
        return
    table = Table("实验 id", "名称", "活动", "对照组", "变体", "目标", "创建时间")
    for e in found:
        variants = ", ".join(v.name for v in e.variants)
        table.add_row(e.experiment_id, e.name, e.campaign, e.control, variants, e.goal, f"{e.created_at:%Y-%m-%d}")
    console.print(table)


@app.command("import")
def import_records(
    experiment_id: ExperimentId,
    assignments: Annotated[Path | None, typer.Option("--assignments", help="cust_no, variant, assigned_at")] = None,
    touches: Annotated[
        Path | None, typer.Option("--touches", help="touch_id, cust_no, channel, stage, touched_at")
    ] = None,
    conversions: Annotated[
        Path | None,
        typer.Option("--conversions", help="conversion_id, cust_no, goal, converted_at[, revenue, aum, benefit_cost]"),
    ] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Fill an experiment's assignments, touches and conversions from CSV / Parquet files (idempotent)."""
    if assignments is None and touches is None and conversions is None:
        fail("give at least one of --assignments, --touches, --conversions", code=2)
    with opened(data_dir, config) as container:
        service = container.experiments
        service.get(experiment_id)
        if assignments is not None:
            console.print(f"分组 assignments: {service.assign(experiment_id, read_table(assignments)):,} new")
        if touches is not None:
            console.print(f"触达 touches: {service.record_touches(experiment_id, read_table(touches)):,} new")
        if conversions is not None:
            console.print(f"转化 conversions: {service.record_conversions(read_table(conversions)):,} new")


@app.command("results")
def results(
    experiment_id: ExperimentId,
    cuped: Cuped = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Lift, intervals, p-values, funnel and ROI of an experiment now (counts as a look)."""
    with opened(data_dir, config) as container:
        found = container.experiments.results(experiment_id, cuped=cuped)
    if as_json:
        print_json(results_document(found))
        return
    print_analysis(found.analysis)
    table = Table("变体", "目标客户", "已发送", "已送达", "已打开", "已点击", "已转化", "转化率", "人均收入")
    for row in found.funnel:
        s = row.stages
        table.add_row(
            row.variant,
            f"{row.targeted:,}",
            *(f"{s[k]:,}" for k in ("sent", "delivered", "opened", "clicked", "converted")),
            f"{row.conversion_rate:.2%}",
            f"{row.revenue_per_customer:,.2f}",
        )
    console.print(table)


@app.command("compare")
def compare(
    experiment_ids: Annotated[list[str], typer.Argument(help="Experiments to compare.")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Strategy comparison: each experiment's lift and ROI, whole and by month of assignment."""
    with opened(data_dir, config) as container:
        rows = container.experiments.compare(experiment_ids)
    if as_json:
        print_json([period_document(row) for row in rows])
        return
    table = Table("实验", "活动", "分期", "变体", "人数", "转化率", "对照", "提升", "p", "增量收入", "ROI")
    for r in rows:
        table.add_row(
            r.experiment_id,
            r.campaign,
            r.period,
            r.variant,
            f"{r.targeted:,}",
            f"{r.conversion_rate:.2%}",
            f"{r.control_rate:.2%}",
            f"{r.lift_abs:+.2%}",
            _fmt(r.p_value, ".3g"),
            f"{r.incremental_revenue:,.0f}",
            _fmt(r.roi, "+.0%"),
        )
    console.print(table)


@app.command("report")
def report(
    experiment_id: ExperimentId,
    out: Annotated[Path, typer.Option("--out", help="The HTML page to write (self-contained).")],
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="Also write the figures as an xlsx workbook.")] = None,
    compare_with: Annotated[
        list[str] | None, typer.Option("--compare", help="Another experiment for the strategy comparison (repeat).")
    ] = None,
    cuped: Cuped = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """One-click review report (复盘): an HTML page with charts, and optionally an xlsx export."""
    with opened(data_dir, config) as container:
        found = container.experiments.results(experiment_id, cuped=cuped)
        rows = container.experiments.compare([experiment_id, *compare_with]) if compare_with else []
    try:
        out.write_text(render_html(found, rows), encoding="utf-8")
        if xlsx is not None:
            write_workbook(found, xlsx, rows)
    except OSError as error:
        fail(f"cannot write the report: {error}", code=1)
    console.print(f"复盘报告已生成 report written: {out}" + (f", {xlsx}" if xlsx else ""))


@app.command("conversions-from-events")
def conversions_from_events(
    event: Annotated[str, typer.Option("--event", help="The tracked event that is a conversion, e.g. purchase.")],
    goal: Annotated[str, typer.Option("--goal", help="The goal it counts for (an experiment's --goal).")],
    revenue_property: Annotated[
        str | None, typer.Option("--revenue-property", help="Event property holding the revenue.")
    ] = None,
    aum_property: Annotated[
        str | None, typer.Option("--aum-property", help="Event property holding the AUM brought in.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only events at or after this time (ISO 8601, UTC).")
    ] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Record conversions from loaded events of known customers (OneID with a customer number); idempotent."""
    start = None
    if since is not None:
        try:
            start = datetime.fromisoformat(since)
        except ValueError:
            fail(f"--since {since!r} is not a time; use e.g. 2026-03-01 or 2026-03-01T08:00:00", code=2)
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
    with opened(data_dir, config) as container:
        added = container.experiments.conversions_from_events(
            event=event, goal=goal, revenue_property=revenue_property, aum_property=aum_property, since=start
        )
    console.print(f"转化 conversions from events: {added:,} new")
