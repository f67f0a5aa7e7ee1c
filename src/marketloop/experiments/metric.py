"""One metric across the variants: each variant against the control, with power and multiple-comparison notes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.experiments.cuped import CupedAdjustment
from marketloop.experiments.design import achieved_power, minimum_detectable_effect
from marketloop.experiments.stats import Comparison, Sample, proportion_test, welch_test


class Notice(NamedTuple):
    """A warning for the reader: a stable code and a message (Chinese first)."""

    code: str
    message: str


@dataclass(frozen=True, kw_only=True)
class VariantResult:
    variant: str
    n: int
    mean: float
    comparison: Comparison | None = None  # None for the control
    p_value_holm: float | None = None  # Holm-adjusted over the variants of this metric
    significant: bool = False
    mde_abs: float | None = None  # minimum detectable absolute effect at the given power
    power: float | None = None  # achieved power for the planned relative effect, when one is given
    warnings: list[Notice] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class MetricResult:
    metric: str
    kind: str  # "binary" or "continuous"
    test: str
    alpha: float  # the level the intervals and `significant` use (lower than planned on an early look)
    cuped: CupedAdjustment | None
    variants: list[VariantResult]
    warnings: list[Notice] = field(default_factory=list)


def compare_metric(
    metric: str,
    samples: dict[str, Sample],
    *,
    control: str,
    binary: bool,
    alpha: float,
    kind: str | None = None,
    power: float,
    mde_rel: float | None = None,
    cuped: CupedAdjustment | None = None,
    notices: list[Notice] | None = None,
) -> MetricResult:
    """Compare every variant of `samples` with `control` (samples in display order, control included).

    A 0/1 metric uses the proportion test, except after CUPED (the adjusted values are not 0/1): Welch.
    """
    for name, sample in samples.items():
        if sample.n < 2:
            raise MarketloopError(
                kind=ErrorKind.INVALID,
                code="experiments.variant-too-small",
                title="A variant has too few customers",
                detail=f"variant {name!r} has {sample.n} customers with a value of {metric!r}; each needs at least 2",
            )
    test = proportion_test if binary and cuped is None else welch_test
    base = samples[control]
    rows = [VariantResult(variant=control, n=base.n, mean=base.mean)]
    others = [name for name in samples if name != control]
    comparisons = {name: test(base, samples[name], alpha=alpha) for name in others}
    holm = holm_adjust({name: c.p_value for name, c in comparisons.items()})
    for name in others:
        rows.append(_variant(name, base, samples[name], comparisons[name], holm[name], alpha, power, mde_rel))
    warnings = list(notices or [])
    if len(others) > 1:
        warnings.append(
            Notice("multiple-variants", "多个变体与对照比较: 判断显著性请看 Holm 校正后的 p 值 (p_value_holm)。")
        )
    return MetricResult(
        metric=metric,
        kind=kind or ("binary" if binary else "continuous"),
        test=comparisons[others[0]].test + (" on CUPED-adjusted values" if cuped else ""),
        alpha=alpha,
        cuped=cuped,
        variants=rows,
        warnings=warnings,
    )


def _variant(
    name: str,
    control: Sample,
    treatment: Sample,
    comparison: Comparison,
    p_holm: float,
    alpha: float,
    power: float,
    mde_rel: float | None,
) -> VariantResult:
    mde = minimum_detectable_effect(control, treatment, alpha=alpha, power=power)
    significant = comparison.p_value < alpha
    warnings: list[Notice] = []
    if not significant and abs(comparison.lift_abs) < mde:
        relative = f" (相对 {mde / abs(control.mean):.1%})" if control.mean else ""
        warnings.append(
            Notice(
                "underpowered",
                f"检验功效不足: 在 {power:.0%} 功效下最小可检测差异为 {mde:.4g}{relative}，"
                f"观察到的差异 {comparison.lift_abs:.4g} 更小；不显著不代表没有效果。",
            )
        )
    achieved = None
    if mde_rel is not None and control.mean and math.isfinite(control.mean):
        achieved = achieved_power(control, treatment, mde_rel * control.mean, alpha=alpha)
        if achieved < power:
            warnings.append(
                Notice(
                    "underpowered-for-plan",
                    f"按计划的相对效果 {mde_rel:.1%}，当前样本的功效只有 {achieved:.0%} (目标 {power:.0%})。",
                )
            )
    return VariantResult(
        variant=name,
        n=treatment.n,
        mean=treatment.mean,
        comparison=comparison,
        p_value_holm=p_holm,
        significant=significant,
        mde_abs=mde,
        power=achieved,
        warnings=warnings,
    )


def holm_adjust(p_values: dict[str, float]) -> dict[str, float]:
    """Holm–Bonferroni adjusted p-values (step-down, made monotone, capped at 1)."""
    ordered = sorted(p_values.items(), key=lambda item: item[1])
    m = len(ordered)
    adjusted: dict[str, float] = {}
    running = 0.0
    for rank, (name, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[name] = running
    return adjusted
