"""CUPED (Deng, Xu, Kohavi & Walker 2013): variance reduction with a pre-period covariate.

Y' = Y − θ (X − mean(X)), θ = Cov(Y, X) / Var(X), with θ and mean(X) estimated
on all groups together (pooled), so the adjustment is the same for every
group and the difference of means stays unbiased when X is measured before
assignment (it cannot be affected by the treatment). The variance of Y' is
Var(Y)(1 − ρ²), ρ the correlation of Y and X. The adjusted values are then
compared with Welch's t-test (they are no longer 0/1, even for a 0/1 metric).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class CupedAdjustment:
    theta: float
    covariate_mean: float
    correlation: float  # of metric and covariate, pooled
    variance_reduction: float  # 1 − Var(Y') / Var(Y) = ρ²


def cuped_theta(metric: FloatArray, covariate: FloatArray) -> CupedAdjustment:
    """θ and the pooled covariate mean; θ = 0 (no adjustment) when the covariate does not vary."""
    if metric.shape != covariate.shape or metric.size < 2:
        raise ValueError("CUPED needs the metric and the covariate for the same customers, at least 2")
    var_x = float(np.var(covariate, ddof=1))
    var_y = float(np.var(metric, ddof=1))
    if var_x == 0 or var_y == 0:
        return CupedAdjustment(theta=0.0, covariate_mean=float(covariate.mean()), correlation=0.0, variance_reduction=0)
    cov = float(np.cov(metric, covariate, ddof=1)[0, 1])
    rho = cov / np.sqrt(var_x * var_y)
    return CupedAdjustment(
        theta=cov / var_x,
        covariate_mean=float(covariate.mean()),
        correlation=float(rho),
        variance_reduction=float(rho**2),
    )


def cuped_adjust(metric: FloatArray, covariate: FloatArray, adjustment: CupedAdjustment) -> FloatArray:
    """The adjusted metric Y − θ (X − mean X) of these customers."""
    adjusted: FloatArray = metric - adjustment.theta * (covariate - adjustment.covariate_mean)
    return adjusted
