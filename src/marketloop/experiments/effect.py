"""Campaign effect: the funnel per variant, value per customer, and ROI against the control.

Reads the per-customer outcomes of an experiment (see
`ExperimentWarehouse.outcomes`). Rates are intent-to-treat: every stage and
conversion is divided by the customers targeted (assigned), so a variant is
not flattered by the customers the contact policy suppressed or who never
opened. The control is "targeted" too: it is the group that was held out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from marketloop.experiments.stats import Sample, welch_test

STAGES = ("suppressed", "sent", "delivered", "opened", "clicked", "converted")


@dataclass(frozen=True, kw_only=True)
class FunnelRow:
    """One variant's funnel (counts of customers) and value per customer."""

    variant: str
    targeted: int
    stages: dict[str, int]  # STAGES → customers
    conversion_rate: float  # converted / targeted
    revenue_per_customer: float
    aum_per_customer: float
    revenue: float
    aum: float
    benefit_cost: float


@dataclass(frozen=True, kw_only=True)
class RoiRow:
    """A treatment variant's costs and incremental value over the control."""

    variant: str
    touches: int
    channel_cost: float
    benefit_cost: float
    cost: float  # channel + benefit
    incremental_conversions: float  # (rate_t − rate_c) × targeted_t
    incremental_revenue: float  # (revenue/customer_t − revenue/customer_c) × targeted_t
    incremental_revenue_low: float  # from the Welch interval of the difference, × targeted_t
    incremental_revenue_high: float
    roi: float | None  # (incremental revenue − cost) / cost; None when nothing was spent
    cost_per_incremental_conversion: float | None


def funnel(outcomes: pl.DataFrame, variants: list[str]) -> list[FunnelRow]:
    """The funnel of each variant in `variants` order (a variant with no customers has zeros)."""
    sums = outcomes.group_by("variant").agg(
        pl.len().alias("targeted"),
        *[pl.col(stage).cast(pl.Int64).sum().alias(stage) for stage in STAGES],
        pl.col("revenue").sum(),
        pl.col("aum").sum(),
        pl.col("benefit_cost").sum(),
    )
    found = {row["variant"]: row for row in sums.iter_rows(named=True)}
    return [_funnel_row(name, found.get(name)) for name in variants]


def _funnel_row(variant: str, row: Mapping[str, object] | None) -> FunnelRow:
    def value(key: str) -> float:
        got = row.get(key) if row else None
        return float(got) if isinstance(got, int | float) else 0.0

    targeted = int(value("targeted"))
    per = 1 / targeted if targeted else math.nan
    return FunnelRow(
        variant=variant,
        targeted=targeted,
        stages={stage: int(value(stage)) for stage in STAGES},
        conversion_rate=value("converted") * per,
        revenue_per_customer=value("revenue") * per,
        aum_per_customer=value("aum") * per,
        revenue=value("revenue"),
        aum=value("aum"),
        benefit_cost=value("benefit_cost"),
    )


def channel_costs_of(touch_counts: pl.DataFrame, costs: Mapping[str, float]) -> dict[str, tuple[int, float]]:
    """Per variant: sent touches and their cost at `costs` (per touch, by channel; unknown channels cost 0)."""
    found: dict[str, tuple[int, float]] = {}
    for row in touch_counts.iter_rows(named=True):
        touches, cost = found.get(row["variant"], (0, 0.0))
        found[row["variant"]] = (
            touches + int(row["touches"]),
            cost + int(row["touches"]) * costs.get(row["channel"], 0),
        )
    return found


def roi(
    outcomes: pl.DataFrame,
    rows: list[FunnelRow],
    control: str,
    spend: Mapping[str, tuple[int, float]],
    *,
    alpha: float = 0.05,
) -> list[RoiRow]:
    """ROI of every treatment variant against `control` (rows from `funnel`, same order)."""
    base = next(row for row in rows if row.variant == control)
    control_revenue = _revenue(outcomes, control)
    found = []
    for row in rows:
        if row.variant == control or row.targeted == 0:
            continue
        touches, channel_cost = spend.get(row.variant, (0, 0.0))
        cost = channel_cost + row.benefit_cost
        extra = (row.revenue_per_customer - base.revenue_per_customer) * row.targeted
        low, high = _revenue_interval(control_revenue, _revenue(outcomes, row.variant), row.targeted, alpha)
        conversions = (row.conversion_rate - base.conversion_rate) * row.targeted
        found.append(
            RoiRow(
                variant=row.variant,
                touches=touches,
                channel_cost=channel_cost,
                benefit_cost=row.benefit_cost,
                cost=cost,
                incremental_conversions=conversions,
                incremental_revenue=extra,
                incremental_revenue_low=low,
                incremental_revenue_high=high,
                roi=(extra - cost) / cost if cost > 0 else None,
                cost_per_incremental_conversion=cost / conversions if conversions > 0 else None,
            )
        )
    return found


def _revenue(outcomes: pl.DataFrame, variant: str) -> Sample:
    return Sample.of(outcomes.filter(pl.col("variant") == variant)["revenue"].to_numpy())


def _revenue_interval(control: Sample, treatment: Sample, targeted: int, alpha: float) -> tuple[float, float]:
    if control.n < 2 or treatment.n < 2:
        return math.nan, math.nan
    difference = welch_test(control, treatment, alpha=alpha)
    return difference.ci_low * targeted, difference.ci_high * targeted
