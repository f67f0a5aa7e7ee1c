"""`marketloop segments freeze | monitor | transitions | fixed | sizes | size-rule | lookalike`.

Fixed segments (固化客群) and their stage transitions, segment size history
and alert rules, and lookalike expansion (相似客群). `register` adds the
commands to the `segments` group.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.table import Table
from rich.text import Text

from marketloop.cli.common import AsJson, ConfigFile, DataDir, as_of_time, console, opened, print_json
from marketloop.cli.segments import AsOf
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.segments.drift import DriftAlert, StageSnapshot, TransitionMatrix
from marketloop.segments.lookalike import LookalikeResult
from marketloop.segments.sizes import SizeHistory
from marketloop.segments.stages import parse_stage_option

Name = Annotated[str, typer.Argument(help="The fixed segment's name.")]
SegmentId = Annotated[str, typer.Argument(help="The segment id (seg_…).")]
ShareThreshold = Annotated[
    float | None, typer.Option("--share-threshold", help="Alert when a stage's share moves more (points).")
]
ShrinkThreshold = Annotated[
    float | None, typer.Option("--shrink-threshold", help="Alert when members still in the segment fall more (%).")
]


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="cli.invalid-stages",
            title="--stages is column:NAME, tag:NAME, segments:SEG,SEG… or a readable file",
            detail=str(error),
        ) from None


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="cli.invalid-date",
            title=f"{option} is not a date",
            detail=f"{text!r}: e.g. 2026-11-24",
        ) from None


def _cell(value: object) -> Text:
    return Text(str(value))


def _alerts(alerts: list[DriftAlert]) -> None:
    for alert in alerts:
        console.print(Text(f"⚠ {alert.on} ({alert.kind}): {alert.message}", style="yellow"))


def _stage_table(stages: list[str], snapshots: list[StageSnapshot]) -> Table:
    table = Table("date", "members", "in segment", *stages)
    table.columns[0].no_wrap = True
    for taken in snapshots:
        shares = [f"{taken.counts.get(s, 0)} ({taken.shares.get(s, 0.0):.1%})" for s in stages]
        table.add_row(*(_cell(v) for v in (taken.on, taken.members, taken.in_segment, *shares)))
    return table


def freeze(
    name: Name,
    segment: Annotated[str, typer.Option("--segment", help="The saved segment to freeze (seg_…).")],
    as_of: AsOf = None,
    share_threshold: ShareThreshold = None,
    shrink_threshold: ShrinkThreshold = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Freeze the members a segment selects now as a fixed segment (固化客群) called NAME."""
    thresholds = {"share_threshold": share_threshold, "shrink_threshold": shrink_threshold}
    with opened(data_dir, config) as container:
        fixed = container.fixed_segments.freeze(
            name, segment, as_of=as_of_time(as_of), **{k: v for k, v in thresholds.items() if v is not None}
        )
    if as_json:
        print_json(msgspec.to_builtins(fixed))
        return
    console.print(Text(f"Froze {fixed.members} customers of {segment} v{fixed.version} as {fixed.name}"))


def monitor(
    name: Name,
    stages: Annotated[
        str | None,
        typer.Option(
            "--stages",
            help="column:NAME, tag:NAME, segments:SEG,SEG… or a file (JSON, or `stage: definition` lines); "
            "needed on the first run only.",
        ),
    ] = None,
    as_of: AsOf = None,
    share_threshold: ShareThreshold = None,
    shrink_threshold: ShrinkThreshold = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Record every member's stage on today's (or --as-of's) date, with the drift alerts against the last one."""
    with opened(data_dir, config) as container:
        scheme = None
        if stages is not None:
            scheme = parse_stage_option(stages, _read, lambda i: container.segments.get(i).name)
        result = container.fixed_segments.monitor(
            name,
            stages=scheme,
            as_of=as_of_time(as_of),
            share_threshold=share_threshold,
            shrink_threshold=shrink_threshold,
        )
        report = container.fixed_segments.report(name)
    if as_json:
        print_json(msgspec.to_builtins(result))
        return
    console.print(_stage_table(report.stages, [result.snapshot]))
    _alerts(result.alerts)


def fixed(
    name: Annotated[str | None, typer.Argument(help="Show this fixed segment; without it, list them.")] = None,
    segment: Annotated[str | None, typer.Option("--segment", help="Only those frozen from this segment.")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """List fixed segments, or show one: stage counts per snapshot date and drift alerts."""
    with opened(data_dir, config) as container:
        found: Any = container.fixed_segments.report(name) if name else container.fixed_segments.list(segment)
    if as_json:
        print_json(msgspec.to_builtins(found))
        return
    if name:
        console.print(_stage_table(found.stages, found.snapshots))
        _alerts(found.alerts)
        return
    table = Table("name", "segment", "version", "as of", "members", "stages")
    for item in found:
        stages = msgspec.json.encode(item.stages).decode() if item.stages else "-"
        table.add_row(*(_cell(v) for v in (item.name, item.segment_id, item.version, item.as_of, item.members, stages)))
    console.print(table)


def _matrix_table(matrix: TransitionMatrix) -> Table:
    table = Table("from \\ to", "total", *matrix.stages, title=f"{matrix.start} → {matrix.end}")
    for source in matrix.stages:
        cells = []
        for target in matrix.stages:
            found = matrix.count(source, target)
            total = matrix.from_totals.get(source, 0)
            cells.append(f"{found} ({found / total:.1%})" if total else "0")
        table.add_row(*(_cell(v) for v in (source, matrix.from_totals.get(source, 0), *cells)))
    return table


def transitions(
    name: Name,
    start: Annotated[str, typer.Option("--from", help="The first snapshot date (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option("--to", help="The second snapshot date.")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """How the members moved between stages from one snapshot date to another (counts and row rates)."""
    first, second = _day(start, "--from"), _day(end, "--to")
    with opened(data_dir, config) as container:
        matrix = container.fixed_segments.transitions(name, first, second)
    if as_json:
        print_json(msgspec.to_builtins(matrix))
        return
    console.print(_matrix_table(matrix))


def sizes(
    segment_id: SegmentId,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the newest N materialisations.")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """The count of every materialisation of a segment, with drop / spike alerts of its size rule."""
    with opened(data_dir, config) as container:
        history: SizeHistory = container.segment_sizes.history(segment_id, limit=limit)
    if as_json:
        print_json(msgspec.to_builtins(history))
        return
    table = Table("as of", "taken", "version", "customers")
    for point in history.points:
        table.add_row(*(_cell(v) for v in (point.as_of, point.snapshot_at, point.version, point.customers)))
    console.print(table)
    for alert in history.alerts:
        console.print(Text(f"⚠ {alert.as_of} ({alert.kind}): {alert.message}", style="yellow"))


def size_rule(
    segment_id: SegmentId,
    drop: Annotated[
        float | None, typer.Option("--drop", help="Alert when the count falls by more than this %.")
    ] = None,
    spike: Annotated[
        float | None, typer.Option("--spike", help="Alert when the count rises by more than this %.")
    ] = None,
    baseline: Annotated[int, typer.Option("--baseline", help="Compare with the median of this many before.")] = 1,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Set the size alert rule of a segment."""
    with opened(data_dir, config) as container:
        rule = container.segment_sizes.set_rule(segment_id, drop_pct=drop, spike_pct=spike, baseline=baseline)
    if as_json:
        print_json(msgspec.to_builtins(rule))
        return
    console.print(Text(f"{segment_id}: alert on a drop over {rule.drop_pct}% or a spike over {rule.spike_pct}%"))


def _lookalike_summary(result: LookalikeResult) -> None:
    report = result.report
    console.print(
        Text(
            f"Saved {result.segment.segment_id} ({result.segment.name}): {report.size} customers like "
            f"{report.seed_id} ({report.seed_size} in the seed); holdout AUC {report.auc:.3f}; "
            f"scores {report.lowest_score:.3f}–{result.members[0].score:.3f} "
            f"(a typical seed member: {report.seed_median_score:.3f})"
        )
    )
    if report.excluded:
        console.print(Text(f"Not learnt from: {', '.join(report.excluded)}"))
    for warning in report.warnings:
        console.print(Text(f"⚠ {warning}", style="yellow"))
    table = Table("feature", "importance (AUC drop)", "seed mean", "others mean", "expansion mean")
    for item in report.importances[:10]:
        expansion = report.expansion_means.get(item.feature)
        values = (item.feature, f"{item.importance:.4f}", item.seed_mean, item.others_mean, expansion)
        table.add_row(*(_cell("-" if v is None else v) for v in values))
    console.print(table)
    console.print(Text(f"Export the members with: marketloop segments export {result.segment.segment_id} -o FILE"))


def lookalike(
    seed: Annotated[str, typer.Argument(help="The seed segment id (seg_…).")],
    size: Annotated[int | None, typer.Option("--size", help="How many customers to take, best first.")] = None,
    min_score: Annotated[float | None, typer.Option("--min-score", help="Only those scoring at least this.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="The new segment's name.")] = None,
    keep_defining_fields: Annotated[
        bool, typer.Option("--keep-defining-fields", help="Also learn from the fields the seed's definition tests.")
    ] = False,
    exclude: Annotated[
        str | None, typer.Option("--exclude", help="Features not to learn from, comma-separated.")
    ] = None,
    as_of: AsOf = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Expand a seed segment into a new saved segment of the most similar customers (相似客群)."""
    with opened(data_dir, config) as container, console.status("Training the lookalike model…"):
        result = container.lookalikes.expand(
            seed,
            size=size,
            min_score=min_score,
            name=name,
            as_of=as_of_time(as_of),
            keep_defining_fields=keep_defining_fields,
            exclude=[name.strip() for name in (exclude or "").split(",") if name.strip()],
        )
    if as_json:
        saved = result.segment
        answer = {"segment_id": saved.segment_id, "name": saved.name, "version": saved.version, "report": result.report}
        print_json(msgspec.to_builtins(answer))
        return
    _lookalike_summary(result)


def register(app: typer.Typer) -> None:
    """Add the monitoring and lookalike commands to the `segments` group."""
    app.command()(freeze)
    app.command()(monitor)
    app.command()(transitions)
    app.command()(fixed)
    app.command()(sizes)
    app.command("size-rule")(size_rule)
    app.command()(lookalike)
