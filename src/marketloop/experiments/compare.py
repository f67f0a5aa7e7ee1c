"""Strategy comparison: the same effect figures per experiment (campaign / strategy) and per period.

A period is the month customers were assigned in, so a recurring campaign
shows whether its effect holds up over time, and two strategies for the
same goal can be read side by side. Each row compares a treatment variant
with its own experiment's control in the same period.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from marketloop.experiments.effect import channel_costs_of, funnel, roi
from marketloop.experiments.stats import Sample, proportion_test
from marketloop.ports.experiments import Experiment

ALL_PERIODS = "全部"


@dataclass(frozen=True, kw_only=True)
class PeriodRow:
    experiment_id: str
    campaign: str
    period: str  # 'YYYY-MM', or ALL_PERIODS for the whole experiment
    variant: str
    targeted: int
    control_targeted: int
    conversion_rate: float
    control_rate: float
    lift_abs: float
    lift_rel: float | None
    ci_low: float | None  # of lift_abs, two-proportion z-test; None when a group has fewer than 2 customers
    ci_high: float | None
    p_value: float | None
    revenue_per_customer: float
    control_revenue_per_customer: float
    incremental_revenue: float
    cost: float
    roi: float | None


def period_rows(
    experiment: Experiment, outcomes: pl.DataFrame, touch_counts: pl.DataFrame, costs: Mapping[str, float]
) -> list[PeriodRow]:
    """Rows for the whole experiment, then for each period, for every treatment variant."""
    variants = [experiment.control, *[v.name for v in experiment.variants if v.name != experiment.control]]
    found = _rows(experiment, ALL_PERIODS, outcomes, touch_counts, costs, variants)
    for period in sorted(outcomes["period"].unique().to_list()):
        part = outcomes.filter(pl.col("period") == period)
        found += _rows(experiment, period, part, touch_counts.filter(pl.col("period") == period), costs, variants)
    return found


def _rows(
    experiment: Experiment,
    period: str,
    outcomes: pl.DataFrame,
    touch_counts: pl.DataFrame,
    costs: Mapping[str, float],
    variants: list[str],
) -> list[PeriodRow]:
    rows = funnel(outcomes, variants)
    base = rows[0]
    if base.targeted == 0:
        return []
    spend = channel_costs_of(touch_counts, costs)
    returns = {r.variant: r for r in roi(outcomes, rows, experiment.control, spend, alpha=experiment.alpha)}
    found = []
    for row in rows[1:]:
        if row.variant not in returns:
            continue
        test = None
        if row.targeted >= 2 and base.targeted >= 2:
            test = proportion_test(
                Sample.of_proportion(base.stages["converted"], base.targeted),
                Sample.of_proportion(row.stages["converted"], row.targeted),
                alpha=experiment.alpha,
            )
        gain = returns[row.variant]
        found.append(
            PeriodRow(
                experiment_id=experiment.experiment_id,
                campaign=experiment.campaign,
                period=period,
                variant=row.variant,
                targeted=row.targeted,
                control_targeted=base.targeted,
                conversion_rate=row.conversion_rate,
                control_rate=base.conversion_rate,
                lift_abs=row.conversion_rate - base.conversion_rate,
                lift_rel=row.conversion_rate / base.conversion_rate - 1 if base.conversion_rate else None,
                ci_low=test.ci_low if test else None,
                ci_high=test.ci_high if test else None,
                p_value=test.p_value if test else None,
                revenue_per_customer=row.revenue_per_customer,
                control_revenue_per_customer=base.revenue_per_customer,
                incremental_revenue=gain.incremental_revenue,
                cost=gain.cost,
                roi=gain.roi if gain.roi is None or math.isfinite(gain.roi) else None,
            )
        )
    return found
