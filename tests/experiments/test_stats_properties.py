"""Properties of the tests on any input: intervals hold the estimate, p-values are probabilities, A/A is uniform."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from marketloop.experiments.stats import Sample, proportion_test, welch_test

sizes = st.integers(min_value=2, max_value=100_000)
alphas = st.sampled_from([0.01, 0.05, 0.1, 0.2])


@st.composite
def proportions(draw: st.DrawFn) -> tuple[Sample, Sample]:
    n_c, n_t = draw(sizes), draw(sizes)
    return (
        Sample.of_proportion(draw(st.integers(0, n_c)), n_c),
        Sample.of_proportion(draw(st.integers(0, n_t)), n_t),
    )


@st.composite
def samples(draw: st.DrawFn) -> tuple[Sample, Sample]:
    means = st.floats(-1e6, 1e6, allow_nan=False)
    variances = st.floats(0, 1e8, allow_nan=False)
    return (
        Sample(n=draw(sizes), mean=draw(means), variance=draw(variances)),
        Sample(n=draw(sizes), mean=draw(means), variance=draw(variances)),
    )


def check(result_low: float, estimate: float, result_high: float) -> None:
    assert result_low <= estimate <= result_high or math.isclose(result_low, result_high)


@given(proportions(), alphas)
def test_proportion_interval_holds_the_estimate_and_p_is_a_probability(
    pair: tuple[Sample, Sample], alpha: float
) -> None:
    result = proportion_test(*pair, alpha=alpha)
    assert 0.0 <= result.p_value <= 1.0
    check(result.ci_low, result.lift_abs, result.ci_high)
    if result.lift_rel is not None:
        assert result.rel_ci_low is not None
        assert result.rel_ci_high is not None
        check(result.rel_ci_low, result.lift_rel, result.rel_ci_high)


@given(samples(), alphas)
def test_welch_interval_holds_the_estimate_and_p_is_a_probability(pair: tuple[Sample, Sample], alpha: float) -> None:
    result = welch_test(*pair, alpha=alpha)
    assert 0.0 <= result.p_value <= 1.0
    check(result.ci_low, result.lift_abs, result.ci_high)
    # significant at alpha exactly when the interval excludes 0 (same t quantile, same standard error)
    if result.std_error > 0 and abs(result.p_value - alpha) > 1e-9:
        assert (result.p_value < alpha) == (result.ci_low > 0 or result.ci_high < 0)


def a_a_p_values(test: str, seed: int, runs: int = 500) -> np.typing.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(runs):
        if test == "proportion":
            a, b = rng.binomial(1, 0.08, 2000), rng.binomial(1, 0.08, 2000)
            result = proportion_test(Sample.of_proportion(int(a.sum()), 2000), Sample.of_proportion(int(b.sum()), 2000))
        else:
            a, b = rng.lognormal(8, 1, 1500), rng.lognormal(8, 1, 1000)
            result = welch_test(Sample.of(a), Sample.of(b))
        found.append(result.p_value)
    return np.asarray(found)


def test_a_a_p_values_are_roughly_uniform() -> None:
    for test, seed in (("proportion", 20261124), ("welch", 42)):
        p = a_a_p_values(test, seed)
        assert sps.kstest(p, "uniform").pvalue > 0.01, test
        false_positives = float((p < 0.05).mean())
        assert 0.025 <= false_positives <= 0.08, (test, false_positives)
        assert 0.4 <= float(np.median(p)) <= 0.6, test


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_welch_p_value_equals_scipy_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, rng.uniform(0.5, 5), rng.integers(2, 60)), rng.normal(1, 1, rng.integers(2, 60))
    reference = sps.ttest_ind(b, a, equal_var=False)
    result = welch_test(Sample.of(a), Sample.of(b))
    assert math.isclose(result.p_value, float(reference.pvalue), rel_tol=1e-9, abs_tol=1e-12)
