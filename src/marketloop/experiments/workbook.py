"""The review report as an xlsx workbook (openpyxl): the same figures as the HTML page, one sheet per part.

Numbers are written as numbers (with a display format), so analysts can
re-compute from the sheet; sheet and column names are Chinese first.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from marketloop.experiments.compare import PeriodRow
from marketloop.experiments.effect import STAGES, FunnelRow
from marketloop.experiments.report import KIND_NAMES, METRIC_NAMES, STAGE_NAMES
from marketloop.experiments.service import ExperimentResults

Cell = str | int | float | None
HEADER_FILL = PatternFill("solid", fgColor="F3F6FA")


def _value(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _sheet(book: Workbook, title: str, header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
    sheet: Worksheet = book.create_sheet(title)
    sheet.append(list(header))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
    for row in rows:
        sheet.append([_value(v) if isinstance(v, float) else v for v in row])
    for index, column in enumerate(sheet.columns, start=1):
        widest = max(len(str(c.value or "")) for c in column)
        sheet.column_dimensions[get_column_letter(index)].width = max(10, min(40, widest + 4))
    sheet.freeze_panes = "B2"


ROI_FIELDS = (
    *("variant", "touches", "channel_cost", "benefit_cost", "cost", "incremental_conversions"),
    *("incremental_revenue", "incremental_revenue_low", "incremental_revenue_high", "roi"),
    "cost_per_incremental_conversion",
)
PERIOD_HEADER = (
    *("实验", "营销活动", "分期", "变体", "实验组人数", "对照组人数", "转化率", "对照转化率", "提升"),
    *("相对提升", "区间下限", "区间上限", "p值", "人均收入", "对照人均收入", "增量收入", "成本", "ROI"),
)
PERIOD_FIELDS = (
    *("experiment_id", "campaign", "period", "variant", "targeted", "control_targeted", "conversion_rate"),
    *("control_rate", "lift_abs", "lift_rel", "ci_low", "ci_high", "p_value", "revenue_per_customer"),
    *("control_revenue_per_customer", "incremental_revenue", "cost", "roi"),
)


def _row(record: object, fields: Sequence[str]) -> list[Cell]:
    found: list[Cell] = [getattr(record, name) for name in fields]
    return found


def _funnel_row(r: FunnelRow) -> list[Cell]:
    return [
        *(r.variant, r.targeted),
        *(r.stages[s] for s in STAGES),
        *(r.conversion_rate, r.revenue_per_customer, r.aum_per_customer, r.revenue, r.aum, r.benefit_cost),
    ]


def build_workbook(results: ExperimentResults, comparison: Sequence[PeriodRow] = ()) -> Workbook:
    book = Workbook()
    default = book.active
    if default is not None:
        book.remove(default)
    _overview(book, results)
    _metrics(book, results)
    stages = ["targeted", *STAGES]
    _sheet(
        book,
        "漏斗",
        ["变体", *[STAGE_NAMES[s] for s in stages], "转化率", "人均收入", "人均新增AUM", "收入", "新增AUM", "权益成本"],
        [_funnel_row(r) for r in results.funnel],
    )
    _sheet(
        book,
        "ROI",
        [
            *("变体", "触达数", "渠道成本", "权益成本", "总成本", "增量转化", "增量收入", "增量收入下限"),
            *("增量收入上限", "ROI", "单个增量转化成本"),
        ],
        [_row(r, ROI_FIELDS) for r in results.roi],
    )
    _sheet(
        book,
        "分期",
        PERIOD_HEADER,
        [_row(p, PERIOD_FIELDS) for p in results.periods],
    )
    if comparison:
        _sheet(book, "策略对比", PERIOD_HEADER, [_row(p, PERIOD_FIELDS) for p in comparison])
    return book


def _overview(book: Workbook, results: ExperimentResults) -> None:
    e = results.experiment
    srm = results.analysis.srm
    rows: list[list[Cell]] = [
        ["实验", e.experiment_id],
        ["名称", e.name],
        ["类型", KIND_NAMES.get(e.kind, e.kind)],
        ["营销活动", e.campaign],
        ["旅程", e.journey_id or ""],
        ["对照组", e.control],
        ["计划分流", " / ".join(f"{v.name}={v.share:g}" for v in e.variants)],
        ["转化目标", e.goal],
        ["转化窗口 (天)", e.window_days],
        ["显著性水平", e.alpha],
        ["SRM 卡方 p 值", srm.p_value],
        ["SRM 失衡", "是" if srm.mismatch else "否"],
        ["生成时间 (UTC)", results.analysed_at.strftime("%Y-%m-%d %H:%M")],
    ]
    notices = list(results.analysis.warnings)
    for metric in results.analysis.metrics:
        notices += metric.warnings + [w for row in metric.variants for w in row.warnings]
    rows += [["提示", message] for message in dict.fromkeys(n.message for n in notices)]
    _sheet(book, "摘要", ["项目", "值"], rows)


def _metrics(book: Workbook, results: ExperimentResults) -> None:
    rows: list[list[Cell]] = []
    for metric in results.analysis.metrics:
        for row in metric.variants:
            c = row.comparison
            found: list[Cell] = [METRIC_NAMES.get(metric.metric, metric.metric), metric.test, row.variant, row.n]
            found.append(row.mean)
            if c is not None:
                found += [c.lift_abs, c.lift_rel, c.ci_low, c.ci_high, c.p_value, row.p_value_holm]
                found += ["是" if row.significant else "否", row.mde_abs]
            rows.append(found)
    _sheet(
        book,
        "指标",
        [
            *("指标", "检验", "变体", "客户数", "均值", "绝对提升", "相对提升", "区间下限", "区间上限", "p值"),
            *("Holm p值", "显著", "最小可检测差异"),
        ],
        rows,
    )


def write_workbook(results: ExperimentResults, path: Path, comparison: Sequence[PeriodRow] = ()) -> None:
    build_workbook(results, comparison).save(path)


def workbook_bytes(results: ExperimentResults, comparison: Sequence[PeriodRow] = ()) -> bytes:
    buffer = io.BytesIO()
    build_workbook(results, comparison).save(buffer)
    return buffer.getvalue()
