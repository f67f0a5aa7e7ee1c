"""The one-click review report (复盘) as a self-contained HTML page: Chinese first, charts as inline SVG.

Everything the page needs is in the page (styles, charts); it loads nothing,
so it opens on a machine without network and can be mailed as one file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from marketloop.experiments import charts
from marketloop.experiments.compare import ALL_PERIODS, PeriodRow
from marketloop.experiments.effect import STAGES
from marketloop.experiments.metric import MetricResult, Notice
from marketloop.experiments.service import ExperimentResults

STAGE_NAMES = {
    "targeted": "目标客户",
    "suppressed": "策略拦截",
    "sent": "已发送",
    "delivered": "已送达",
    "opened": "已打开",
    "clicked": "已点击",
    "converted": "已转化",
}
METRIC_NAMES = {"converted": "转化率", "revenue": "人均收入 (元)", "aum": "人均新增 AUM (元)"}
KIND_NAMES = {"ab": "A/B 实验", "holdout": "对照组实验", "journey-split": "旅程分流"}

STYLE = """
body{font-family:'PingFang SC','Microsoft YaHei','Noto Sans CJK SC',sans-serif;margin:32px auto;max-width:1000px;
color:#222;line-height:1.5;padding:0 16px}
h1{font-size:24px;margin-bottom:4px}
h2{font-size:18px;border-bottom:2px solid #1f6feb;padding-bottom:4px;margin-top:32px}
.meta{color:#666;font-size:13px}table{border-collapse:collapse;width:100%;margin:8px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f3f6fa}
td:first-child,th:first-child{text-align:left}
.warn{background:#fff7e6;border-left:4px solid #fa8c16;padding:6px 10px;margin:6px 0}
.ok{background:#f6ffed;border-left:4px solid #52c41a;padding:6px 10px;margin:6px 0}
.sig{color:#1f6feb;font-weight:bold}.en{color:#888;font-size:12px}figure{margin:12px 0}
"""


def _pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:+.{digits}%}"


def _points(value: float) -> str:
    """A difference of two rates in percentage points (个百分点), e.g. +2.67."""
    return f"{value * 100:+.2f}" if math.isfinite(value) else "—"


def _num(value: float | None, spec: str = ",.2f") -> str:
    return "—" if value is None or not math.isfinite(value) else format(value, spec)


def _p(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return "&lt;0.0001" if value < 1e-4 else f"{value:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(results: ExperimentResults, comparison: Sequence[PeriodRow] = ()) -> str:
    """The whole review page of `results`, with a strategy comparison when `comparison` has rows."""
    experiment = results.experiment
    sections = [
        _header(results),
        _summary(results),
        _warnings(results),
        _funnel(results),
        *[_metric(metric, results) for metric in results.analysis.metrics],
        _roi(results),
        _periods(results),
        _comparison(comparison) if comparison else "",
        _methods(results),
    ]
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>实验复盘 · {escape(experiment.name)}</title><style>{STYLE}</style></head><body>"
        + "".join(sections)
        + "</body></html>"
    )


def _header(results: ExperimentResults) -> str:
    e = results.experiment
    split = " / ".join(f"{escape(v.name)} {v.share / sum(x.share for x in e.variants):.0%}" for v in e.variants)
    journey = f" · 旅程 {escape(e.journey_id)}" if e.journey_id else ""
    return (
        f"<h1>实验复盘：{escape(e.name)}</h1><p class='en'>Experiment review report · {escape(e.experiment_id)}</p>"
        f"<p class='meta'>{KIND_NAMES.get(e.kind, e.kind)} · 营销活动 {escape(e.campaign)}{journey} · "
        f"对照组 <b>{escape(e.control)}</b> · 计划分流 {split} · 转化目标 {escape(e.goal)}，"
        f"分组后 {e.window_days} 天内 · 显著性水平 α={e.alpha:g} · "
        f"生成于 {results.analysed_at:%Y-%m-%d %H:%M} UTC</p>"
    )


def _summary(results: ExperimentResults) -> str:
    rate = results.analysis.metrics[0]
    gains = {row.variant: row for row in results.roi}
    items = []
    for row in rate.variants[1:]:
        c = row.comparison
        if c is None:
            continue
        verdict = "<span class='sig'>显著</span>" if row.significant else "不显著"
        gain = gains.get(row.variant)
        money = ""
        if gain is not None:
            money = (
                f"；增量收入 {_num(gain.incremental_revenue)} 元 "
                f"({1 - results.experiment.alpha:.0%} 区间 {_num(gain.incremental_revenue_low)} ~ "
                f"{_num(gain.incremental_revenue_high)})，"
                f"成本 {_num(gain.cost)} 元，ROI {_pct(gain.roi, 0)}"
            )
        items.append(
            f"<li><b>{escape(row.variant)}</b> 对比 {escape(results.experiment.control)}：转化率 "
            f"{_num(row.mean, '.2%')} vs {_num(rate.variants[0].mean, '.2%')}，提升 {_points(c.lift_abs)} 个百分点 "
            f"(区间 {_points(c.ci_low)} ~ {_points(c.ci_high)})，相对 {_pct(c.lift_rel, 1)}，p={_p(c.p_value)}，"
            f"{verdict}{money}</li>"
        )
    return "<h2>结论摘要 <span class='en'>Summary</span></h2><ul>" + "".join(items) + "</ul>"


def _warnings(results: ExperimentResults) -> str:
    notices: list[Notice] = list(results.analysis.warnings)
    for metric in results.analysis.metrics:
        notices += metric.warnings
        notices += [w for row in metric.variants for w in row.warnings]
    srm = results.analysis.srm
    head = "<h2>数据质量与检验提示 <span class='en'>Checks</span></h2>"
    srm_line = (
        f"<div class='ok'>样本比例检查 (SRM) 通过：卡方检验 p={_p(srm.p_value)}。</div>" if not srm.mismatch else ""
    )
    unique = dict.fromkeys(n.message for n in notices)  # the same notice of several variants once
    return head + srm_line + "".join(f"<div class='warn'>{escape(message)}</div>" for message in unique)


def _funnel(results: ExperimentResults) -> str:
    stages = ["targeted", *STAGES]
    rows = []
    for row in results.funnel:
        counts = {"targeted": row.targeted, **row.stages}
        rows.append(
            [escape(row.variant)]
            + [_share(counts[s], row.targeted) for s in stages]
            + [_num(row.revenue_per_customer), _num(row.aum_per_customer)]
        )
    series = {
        row.variant: [(row.stages[s] / row.targeted) if row.targeted else math.nan for s in STAGES if s != "suppressed"]
        for row in results.funnel
    }
    chart = charts.grouped_bars(
        [STAGE_NAMES[s] for s in STAGES if s != "suppressed"], series, title="营销漏斗 (占目标客户比例)"
    )
    header = ["变体", *[STAGE_NAMES[s] for s in stages], "人均收入", "人均新增 AUM"]
    return f"<h2>营销漏斗 <span class='en'>Funnel</span></h2>{_table(header, rows)}<figure>{chart}</figure>"


def _share(count: int, targeted: int) -> str:
    return f"{count:,}" + (f" <span class='en'>({count / targeted:.1%})</span>" if targeted else "")


def _metric(metric: MetricResult, results: ExperimentResults) -> str:
    name = METRIC_NAMES.get(metric.metric, metric.metric)
    rate = metric.kind == "binary"
    spec = ".2%" if rate else ",.2f"

    def fmt(value: float | None) -> str:
        return _num(value, spec)

    rows = []
    for row in metric.variants:
        c = row.comparison
        rows.append(
            [
                escape(row.variant) + (" (对照)" if c is None else ""),
                f"{row.n:,}",
                fmt(row.mean),
                fmt(c.lift_abs) if c else "—",
                _pct(c.lift_rel, 1) if c else "—",
                f"{fmt(c.ci_low)} ~ {fmt(c.ci_high)}" if c else "—",
                _p(c.p_value) if c else "—",
                _p(row.p_value_holm) if c else "—",
                ("<span class='sig'>是</span>" if row.significant else "否") if c else "—",
            ]
        )
    intervals = [
        charts.Interval(
            label=row.variant,
            estimate=row.comparison.lift_rel,
            low=row.comparison.rel_ci_low if row.comparison.rel_ci_low is not None else math.nan,
            high=row.comparison.rel_ci_high if row.comparison.rel_ci_high is not None else math.nan,
            significant=row.significant,
        )
        for row in metric.variants
        if row.comparison is not None and row.comparison.lift_rel is not None
    ]
    title = f"{name}：相对提升及置信区间"
    chart = charts.forest(intervals, title=title, label=lambda v: f"{v:+.1%}") if intervals else ""
    cuped = ""
    if metric.cuped is not None:
        cuped = (
            f"<p class='meta'>CUPED 已启用：θ={metric.cuped.theta:.4g}，"
            f"方差降低 {metric.cuped.variance_reduction:.1%}。</p>"
        )
    header = [
        "变体",
        "客户数",
        "均值",
        "绝对提升",
        "相对提升",
        f"{1 - metric.alpha:.1%} 置信区间",
        "p 值",
        "Holm p",
        "显著",
    ]
    return (
        f"<h2>{escape(name)} <span class='en'>{escape(metric.metric)} · {escape(metric.test)}</span></h2>"
        f"{cuped}{_table(header, rows)}<figure>{chart}</figure>"
    )


def _roi(results: ExperimentResults) -> str:
    rows = [
        [
            escape(r.variant),
            f"{r.touches:,}",
            _num(r.channel_cost),
            _num(r.benefit_cost),
            _num(r.cost),
            _num(r.incremental_conversions, ",.1f"),
            _num(r.incremental_revenue),
            f"{_num(r.incremental_revenue_low)} ~ {_num(r.incremental_revenue_high)}",
            _pct(r.roi, 0),
            _num(r.cost_per_incremental_conversion),
        ]
        for r in results.roi
    ]
    costs = "，".join(f"{escape(k)} {v:g} 元/条" for k, v in sorted(results.channel_costs.items()))
    header = [
        "变体",
        "触达数",
        "渠道成本",
        "权益成本",
        "总成本",
        "增量转化",
        "增量收入",
        "增量收入区间",
        "ROI",
        "单个增量转化成本",
    ]
    return (
        f"<h2>投入产出 (ROI) <span class='en'>Return on investment</span></h2>{_table(header, rows)}"
        "<p class='meta'>ROI = (增量收入 − 成本) / 成本；增量 = (实验组人均 − 对照组人均) × 实验组人数。"
        f"渠道单价：{costs}。</p>"
    )


def _periods(results: ExperimentResults) -> str:
    rows = [
        [
            escape(r.period),
            escape(r.variant),
            f"{r.targeted:,} / {r.control_targeted:,}",
            f"{r.conversion_rate:.2%} / {r.control_rate:.2%}",
            _pct(r.lift_abs),
            f"{_pct(r.ci_low)} ~ {_pct(r.ci_high)}",
            _p(r.p_value),
            _num(r.incremental_revenue),
            _pct(r.roi, 0),
        ]
        for r in results.periods
    ]
    months = sorted({r.period for r in results.periods if r.period != ALL_PERIODS})
    chart = ""
    if len(months) > 1:
        by = {(r.period, r.variant): r for r in results.periods}
        variants = sorted({r.variant for r in results.periods})
        control = [next((by[(m, v)].control_rate for v in variants if (m, v) in by), math.nan) for m in months]
        series = {results.experiment.control: control} | {
            v: [by[(m, v)].conversion_rate if (m, v) in by else math.nan for m in months] for v in variants
        }
        chart = "<figure>" + charts.lines(months, series, title="分期转化率") + "</figure>"
    header = ["分期", "变体", "实验/对照人数", "实验/对照转化率", "提升", "置信区间", "p 值", "增量收入", "ROI"]
    return f"<h2>分期对比 <span class='en'>By period</span></h2>{_table(header, rows)}{chart}"


def _comparison(rows: Sequence[PeriodRow]) -> str:
    whole = [r for r in rows if r.period == ALL_PERIODS]
    table = _table(
        ["实验", "营销活动", "分期", "变体", "实验/对照人数", "实验/对照转化率", "提升", "置信区间", "p 值", "ROI"],
        [
            [
                escape(r.experiment_id),
                escape(r.campaign),
                escape(r.period),
                escape(r.variant),
                f"{r.targeted:,} / {r.control_targeted:,}",
                f"{r.conversion_rate:.2%} / {r.control_rate:.2%}",
                _pct(r.lift_abs),
                f"{_pct(r.ci_low)} ~ {_pct(r.ci_high)}",
                _p(r.p_value),
                _pct(r.roi, 0),
            ]
            for r in rows
        ],
    )
    labels = [f"{r.campaign}·{r.variant}" for r in whole]
    series = {"对照组": [r.control_rate for r in whole], "实验组": [r.conversion_rate for r in whole]}
    chart = charts.grouped_bars(labels, series, title="各策略转化率 (全部分期)") if whole else ""
    return f"<h2>策略对比 <span class='en'>Strategy comparison</span></h2>{table}<figure>{chart}</figure>"


def _methods(results: ExperimentResults) -> str:
    look = results.analysis.peeking
    peeking = (
        f"本次为第 {look.looks} 次查看，样本量达到计划的 {look.fraction:.0%}；按 O'Brien–Fleming alpha 消耗，"
        f"本次显著性水平 {look.sequential_alpha:.3g}。"
        if look
        else "未设定计划样本量，未做提前查看校正。"
    )
    return (
        "<h2>方法说明 <span class='en'>Methods</span></h2><ul>"
        "<li>转化率 (0/1 指标)：两比例 z 检验，p 值用合并标准误，置信区间用非合并 (Wald) 标准误。</li>"
        "<li>人均收入、人均 AUM：Welch t 检验 (不假设方差相等，Welch–Satterthwaite 自由度)。</li>"
        "<li>相对提升的置信区间：delta 方法。多个实验组时另给 Holm 校正 p 值。</li>"
        "<li>样本比例检查 (SRM)：实际分组人数对计划分流比例的卡方拟合优度检验，p&lt;0.001 判为失衡。</li>"
        "<li>功效：按观察到的方差计算 80% 功效下的最小可检测差异 (MDE)，不显著且差异小于 MDE 时提示功效不足。</li>"
        f"<li>{peeking}</li><li>所有比率按意向处理 (ITT) 计算：分母为分到该组的全部客户。</li></ul>"
    )
