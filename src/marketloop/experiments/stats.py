"""The statistics of one comparison: a variant against the control, on one metric.

Pure functions over summary statistics (counts, means, variances), so the same
code serves a file given to `marketloop experiment analyze`, a journey's holdout
read from the warehouse and the review report. Which test, and why:

- binary 0/1 metrics: the two-proportion z-test. The p-value uses the pooled
  standard error (the null hypothesis says both rates are equal); the confidence
  interval of the difference uses the unpooled (Wald) standard error, which
  does not assume the null.
- other metrics: Welch's t-test (unequal variances), with the
  Welch–Satterthwaite degrees of freedom, for the p-value and the interval.
- relative lift (treatment / control − 1): the delta method on the ratio of the
  two independent means; the interval is symmetric around the point estimate.

docs/experiments.md explains each with its assumptions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

PROPORTION_TEST = "two-proportion z-test (pooled SE for p, unpooled SE for CI)"
WELCH_TEST = "Welch's t-test (Welch–Satterthwaite df)"


@dataclass(frozen=True, kw_only=True)
class Sample:
    """What a test needs of one group: size, mean and (unbiased, ddof=1) variance of the metric."""

    n: int
    mean: float
    variance: float

    @classmethod
    def of(cls, values: np.typing.ArrayLike) -> Sample:
        array = np.asarray(values, dtype=np.float64)
        n = int(array.size)
        variance = float(array.var(ddof=1)) if n > 1 else 0.0
        return cls(n=n, mean=float(array.mean()) if n else math.nan, variance=variance)

    @classmethod
    def of_proportion(cls, successes: int, n: int) -> Sample:
        """A 0/1 metric from its count of ones; the variance is the unbiased sample variance of the 0/1 values."""
        if n <= 0:
            return cls(n=0, mean=math.nan, variance=math.nan)
        p = successes / n
        variance = p * (1 - p) * n / (n - 1) if n > 1 else 0.0
        return cls(n=n, mean=p, variance=variance)


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """A variant against the control: absolute and relative lift, their intervals and the p-value."""

    test: str
    lift_abs: float  # treatment mean − control mean
    ci_low: float  # confidence interval of lift_abs
    ci_high: float
    p_value: float  # two-sided
    statistic: float  # z or t
    df: float | None  # Welch–Satterthwaite degrees of freedom; None for the z-test
    lift_rel: float | None  # treatment / control − 1; None when the control mean is 0
    rel_ci_low: float | None
    rel_ci_high: float | None
    std_error: float  # of lift_abs, the one the interval uses


def proportion_test(control: Sample, treatment: Sample, *, alpha: float = 0.05) -> Comparison:
    """Two-proportion z-test of treatment against control (means are the rates of ones)."""
    _check(control, treatment, alpha)
    p_c, p_t = control.mean, treatment.mean
    pooled = (p_c * control.n + p_t * treatment.n) / (control.n + treatment.n)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n))
    se_wald = math.sqrt(p_c * (1 - p_c) / control.n + p_t * (1 - p_t) / treatment.n)
    diff = p_t - p_c
    if se_pooled == 0:
        z, p_value = 0.0, 1.0  # both groups all ones or all zeros: no evidence of a difference
    else:
        z = diff / se_pooled
        p_value = float(2 * stats.norm.sf(abs(z)))
    crit = float(stats.norm.ppf(1 - alpha / 2))
    return _comparison(PROPORTION_TEST, control, treatment, diff, se_wald, crit, z, p_value, None)


def welch_test(control: Sample, treatment: Sample, *, alpha: float = 0.05) -> Comparison:
    """Welch's unequal-variances t-test of treatment against control."""
    _check(control, treatment, alpha)
    v_c, v_t = control.variance / control.n, treatment.variance / treatment.n
    se = math.sqrt(v_c + v_t)
    diff = treatment.mean - control.mean
    if se == 0:
        return _comparison(WELCH_TEST, control, treatment, diff, 0.0, 0.0, 0.0, 1.0 if diff == 0 else 0.0, None)
    df = welch_df(control, treatment)
    t = diff / se
    p_value = float(2 * stats.t.sf(abs(t), df))
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    return _comparison(WELCH_TEST, control, treatment, diff, se, crit, t, p_value, df)


def welch_df(control: Sample, treatment: Sample) -> float:
    """Welch–Satterthwaite degrees of freedom: (v1 + v2)² / (v1²/(n1−1) + v2²/(n2−1)), v = s²/n."""
    v_c, v_t = control.variance / control.n, treatment.variance / treatment.n
    # In shares of the total, so tiny variances do not underflow when squared.
    share_c = v_c / (v_c + v_t)
    share_t = 1 - share_c
    return 1 / (share_c**2 / (control.n - 1) + share_t**2 / (treatment.n - 1))


def relative_lift(control: Sample, treatment: Sample, crit: float) -> tuple[float, float, float] | None:
    """Treatment / control − 1 with a delta-method interval, or None when the control mean is 0.

    Var(m_t / m_c) ≈ Var(m_t)/m_c² + m_t² Var(m_c)/m_c⁴ = (Var(m_t) + r² Var(m_c)) / m_c², r = m_t / m_c,
    for independent groups, with Var(m) = s²/n.
    """
    if control.mean == 0 or not math.isfinite(control.mean):
        return None
    ratio = treatment.mean / control.mean
    se = math.sqrt(treatment.variance / treatment.n + ratio * ratio * control.variance / control.n) / abs(control.mean)
    if not (math.isfinite(ratio) and math.isfinite(se)):
        return None
    half = crit * se
    return ratio - 1, ratio - 1 - half, ratio - 1 + half


def _comparison(
    test: str,
    control: Sample,
    treatment: Sample,
    diff: float,
    se: float,
    crit: float,
    statistic: float,
    p_value: float,
    df: float | None,
) -> Comparison:
    rel = relative_lift(control, treatment, crit)
    return Comparison(
        test=test,
        lift_abs=diff,
        ci_low=diff - crit * se,
        ci_high=diff + crit * se,
        p_value=min(1.0, max(0.0, p_value)),
        statistic=statistic,
        df=df,
        lift_rel=rel[0] if rel else None,
        rel_ci_low=rel[1] if rel else None,
        rel_ci_high=rel[2] if rel else None,
        std_error=se,
    )


def _check(control: Sample, treatment: Sample, alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha}")
    for name, sample in (("control", control), ("treatment", treatment)):
        if sample.n < 2:
            raise ValueError(f"the {name} group needs at least 2 customers, it has {sample.n}")
