"""Checks of an experiment's design: sample-ratio mismatch, power / minimum detectable effect, peeking.

- SRM: Pearson's chi-square goodness-of-fit of the observed group sizes
  against the planned split (scipy.stats.chisquare). A tiny p-value (below
  0.001 by default, the usual threshold) means the assignment or the logging
  is broken and no lift should be trusted.
- Power: the normal-approximation minimum detectable effect (MDE) of a
  two-sided test at level alpha with the given power, from the observed
  variances and sizes: (z₁₋α/₂ + z_power) · √(s_c²/n_c + s_t²/n_t).
- Peeking: looking at a running test and stopping when it is significant
  inflates the false-positive rate. The correction offered is alpha spending
  with the Lan–DeMets O'Brien–Fleming spending function
  α(t) = 2 − 2Φ(z₁₋α/₂ / √t), t = information fraction (n now / n planned);
  each look is tested at the alpha it newly spends, α(t_k) − α(t_{k−1}),
  which by the union bound keeps the overall false-positive rate at or below
  alpha (conservative: the exact group-sequential boundaries are a little wider).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

from marketloop.experiments.stats import Sample

SRM_THRESHOLD = 0.001
MIN_LOOK_ALPHA = 1e-10  # a very early look spends next to nothing; the tests need a level above 0


@dataclass(frozen=True, kw_only=True)
class SampleRatioCheck:
    """Observed group sizes against the planned shares."""

    observed: dict[str, int]
    expected_share: dict[str, float]
    chi_square: float
    p_value: float
    mismatch: bool


def sample_ratio(
    observed: Mapping[str, int], planned: Mapping[str, float], *, threshold: float = SRM_THRESHOLD
) -> SampleRatioCheck:
    """Chi-square test of the group sizes against the planned split (shares are normalised to sum to 1)."""
    names = list(planned)
    if set(names) != set(observed):
        raise ValueError(f"the planned split names {sorted(names)} but the data has {sorted(observed)}")
    total_share = sum(planned.values())
    if total_share <= 0 or any(share <= 0 for share in planned.values()):
        raise ValueError("every planned share must be positive")
    shares = {name: planned[name] / total_share for name in names}
    counts = [observed[name] for name in names]
    total = sum(counts)
    expected = [shares[name] * total for name in names]
    result = stats.chisquare(counts, expected)
    p_value = float(result.pvalue)
    return SampleRatioCheck(
        observed={name: observed[name] for name in names},
        expected_share=shares,
        chi_square=float(result.statistic),
        p_value=p_value,
        mismatch=p_value < threshold,
    )


def minimum_detectable_effect(control: Sample, treatment: Sample, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest absolute difference a two-sided test at `alpha` detects with probability `power`."""
    se = math.sqrt(control.variance / control.n + treatment.variance / treatment.n)
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * se)


def achieved_power(control: Sample, treatment: Sample, effect: float, *, alpha: float = 0.05) -> float:
    """Probability that a two-sided test at `alpha` is significant when the true difference is `effect`."""
    se = math.sqrt(control.variance / control.n + treatment.variance / treatment.n)
    if se == 0:
        return 1.0 if effect != 0 else alpha
    crit = stats.norm.ppf(1 - alpha / 2)
    shift = abs(effect) / se
    return float(stats.norm.sf(crit - shift) + stats.norm.cdf(-crit - shift))


def sample_size_per_group(variance: float, effect: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Customers per group (equal split, equal variances) to detect an absolute `effect` with `power`."""
    if effect == 0:
        raise ValueError("the effect to detect must not be 0")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return math.ceil(2 * variance * z**2 / effect**2)


def spent_alpha(fraction: float, *, alpha: float = 0.05) -> float:
    """Lan–DeMets O'Brien–Fleming spending: the alpha spent up to information fraction `fraction`."""
    if fraction <= 0:
        return 0.0
    t = min(fraction, 1.0)
    return float(2 * stats.norm.sf(stats.norm.ppf(1 - alpha / 2) / math.sqrt(t)))


def look_alpha(fractions: Sequence[float], *, alpha: float = 0.05) -> float:
    """The alpha for the last of these looks (information fractions in order): what it newly spends."""
    if not fractions:
        raise ValueError("no looks")
    previous = spent_alpha(fractions[-2], alpha=alpha) if len(fractions) > 1 else 0.0
    return max(spent_alpha(fractions[-1], alpha=alpha) - previous, 0.0)


@dataclass(frozen=True, kw_only=True)
class Peeking:
    """How often the test was looked at before it reached its planned size, and the alpha for this look."""

    looks: int  # including this one
    fraction: float  # information fraction of this look (n now / n planned), capped at 1
    nominal_alpha: float
    sequential_alpha: float  # what this look may spend under O'Brien–Fleming alpha spending
    early: bool  # this look is before the planned size


def peeking(previous_sizes: Sequence[int], current_size: int, planned_size: int, *, alpha: float = 0.05) -> Peeking:
    """The sequential view of this look, given the sizes at the earlier looks and the planned size."""
    if planned_size <= 0:
        raise ValueError("the planned sample size must be positive")
    earlier = sorted({size for size in previous_sizes if 0 < size < current_size})
    fractions = [min(size / planned_size, 1.0) for size in [*earlier, current_size]]
    return Peeking(
        looks=len(fractions),
        fraction=fractions[-1],
        nominal_alpha=alpha,
        sequential_alpha=max(look_alpha(fractions, alpha=alpha), MIN_LOOK_ALPHA),
        early=current_size < planned_size,
    )
