"""Every statistic against values computed independently here: by hand from the textbook formula, or by scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from marketloop.experiments.cuped import cuped_adjust, cuped_theta
from marketloop.experiments.design import (
    achieved_power,
    look_alpha,
    minimum_detectable_effect,
    peeking,
    sample_ratio,
    sample_size_per_group,
    spent_alpha,
)
from marketloop.experiments.metric import holm_adjust
from marketloop.experiments.stats import Sample, proportion_test, relative_lift, welch_df, welch_test


def normal_two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def test_two_proportion_z_test_by_hand() -> None:
    # 200 of 1000 converted in control, 250 of 1000 with the campaign.
    control, treatment = Sample.of_proportion(200, 1000), Sample.of_proportion(250, 1000)
    result = proportion_test(control, treatment)
    pooled = 450 / 2000
    z = 0.05 / math.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 1000))
    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.statistic == pytest.approx(2.6774, abs=1e-4)
    assert result.p_value == pytest.approx(normal_two_sided_p(z), rel=1e-9)
    assert result.p_value == pytest.approx(0.00742, abs=1e-5)
    wald = math.sqrt(0.2 * 0.8 / 1000 + 0.25 * 0.75 / 1000)
    assert result.ci_low == pytest.approx(0.05 - 1.959964 * wald, abs=1e-6)
    assert result.ci_high == pytest.approx(0.05 + 1.959964 * wald, abs=1e-6)
    assert result.df is None


def test_pooled_z_squared_is_pearson_chi_square_of_the_2x2_table() -> None:
    table = np.array([[130, 870], [171, 1029]])
    chi2, p, _, _ = sps.chi2_contingency(table, correction=False)
    result = proportion_test(Sample.of_proportion(130, 1000), Sample.of_proportion(171, 1200))
    assert result.statistic**2 == pytest.approx(chi2, rel=1e-9)
    assert result.p_value == pytest.approx(p, rel=1e-9)


def test_welch_matches_scipy_and_the_satterthwaite_formula() -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(100, 20, size=40)
    b = rng.normal(110, 35, size=25)
    control, treatment = Sample.of(a), Sample.of(b)
    result = welch_test(control, treatment, alpha=0.1)
    reference = sps.ttest_ind(b, a, equal_var=False)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    v1, v2 = a.var(ddof=1) / 40, b.var(ddof=1) / 25
    df = (v1 + v2) ** 2 / (v1**2 / 39 + v2**2 / 24)
    assert result.df == pytest.approx(df, rel=1e-12)
    assert result.df == pytest.approx(reference.df, rel=1e-10)
    low, high = reference.confidence_interval(confidence_level=0.9)
    assert (result.ci_low, result.ci_high) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))


def test_welch_df_textbook_example() -> None:
    # s1² = 10, n1 = 11; s2² = 40, n2 = 21: v1 = 10/11, v2 = 40/21
    control, treatment = Sample(n=11, mean=0, variance=10), Sample(n=21, mean=1, variance=40)
    v1, v2 = 10 / 11, 40 / 21
    assert welch_df(control, treatment) == pytest.approx((v1 + v2) ** 2 / (v1**2 / 10 + v2**2 / 20))
    assert welch_df(control, treatment) == pytest.approx(29.99, abs=0.01)


def test_relative_lift_delta_method_by_hand() -> None:
    control, treatment = Sample(n=400, mean=50.0, variance=900.0), Sample(n=500, mean=55.0, variance=1600.0)
    lift, low, high = relative_lift(control, treatment, 1.959964) or (0, 0, 0)
    var = (1600 / 500) / 50**2 + 55**2 * (900 / 400) / 50**4
    assert lift == pytest.approx(0.1)
    assert low == pytest.approx(0.1 - 1.959964 * math.sqrt(var))
    assert high == pytest.approx(0.1 + 1.959964 * math.sqrt(var))
    assert relative_lift(Sample(n=10, mean=0.0, variance=0.0), treatment, 1.96) is None


def test_relative_interval_covers_the_true_ratio_about_95_percent() -> None:
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(400):
        a, b = rng.exponential(100.0, 800), rng.exponential(120.0, 800)
        found = welch_test(Sample.of(a), Sample.of(b))
        assert found.rel_ci_low is not None
        assert found.rel_ci_high is not None
        covered += found.rel_ci_low <= 0.2 <= found.rel_ci_high
    assert 0.92 <= covered / 400 <= 0.98


def test_zero_variance_groups_give_no_evidence() -> None:
    same = proportion_test(Sample.of_proportion(0, 50), Sample.of_proportion(0, 60))
    assert (same.p_value, same.lift_abs) == (1.0, 0.0)
    flat = welch_test(Sample.of([3.0, 3.0]), Sample.of([3.0, 3.0, 3.0]))
    assert flat.p_value == 1.0


def test_a_group_of_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        welch_test(Sample.of([1.0]), Sample.of([1.0, 2.0]))


def test_sample_ratio_mismatch_chi_square_by_hand() -> None:
    check = sample_ratio({"control": 4850, "push": 5150}, {"control": 0.5, "push": 0.5})
    chi2 = 2 * 150**2 / 5000
    assert check.chi_square == pytest.approx(chi2)
    assert check.p_value == pytest.approx(math.erfc(math.sqrt(chi2 / 2)), rel=1e-9)  # chi-square, 1 df
    assert not check.mismatch  # chi² = 9 → p ≈ 0.0027, above the 0.001 threshold
    fine = sample_ratio({"control": 1010, "push": 4000}, {"control": 1, "push": 4})
    assert not fine.mismatch
    assert fine.expected_share == {"control": 0.2, "push": 0.8}


def test_sample_ratio_threshold_is_one_in_a_thousand() -> None:
    check = sample_ratio({"a": 4850, "b": 5150}, {"a": 1, "b": 1})
    assert check.p_value == pytest.approx(0.0027, abs=1e-4)
    assert sample_ratio({"a": 4850, "b": 5150}, {"a": 1, "b": 1}, threshold=0.001).mismatch is False
    assert sample_ratio({"a": 4800, "b": 5200}, {"a": 1, "b": 1}).mismatch is True


def test_sample_size_and_mde_by_hand() -> None:
    # 10% base rate, detect +1 point, alpha 5%, power 80%: n = 2 p(1-p) (z.975 + z.8)² / δ²
    z = 1.959964 + 0.841621
    assert sample_size_per_group(0.09, 0.01) == math.ceil(2 * 0.09 * z**2 / 0.01**2) == 14128
    control = treatment = Sample(n=14128, mean=0.1, variance=0.09)
    assert minimum_detectable_effect(control, treatment) == pytest.approx(0.01, rel=1e-4)
    assert achieved_power(control, treatment, 0.01) == pytest.approx(0.8, abs=1e-3)
    assert achieved_power(control, treatment, 0.0) == pytest.approx(0.05, abs=1e-9)


def test_obrien_fleming_spending_textbook_values() -> None:
    # Lan & DeMets (1983) O'Brien–Fleming-type spending at alpha = 0.05, two-sided.
    assert spent_alpha(1.0) == pytest.approx(0.05, abs=1e-9)
    assert spent_alpha(0.5) == pytest.approx(2 - 2 * sps.norm.cdf(1.959964 / math.sqrt(0.5)), abs=1e-9)
    assert spent_alpha(0.5) == pytest.approx(0.0056, abs=1e-4)
    assert spent_alpha(0.25) == pytest.approx(0.000089, abs=2e-6)
    assert look_alpha([0.25, 0.5]) == pytest.approx(spent_alpha(0.5) - spent_alpha(0.25))


def test_peeking_counts_looks_before_the_planned_size() -> None:
    look = peeking([1000, 2000, 2000], 3000, 6000)
    assert (look.looks, look.early, look.fraction) == (3, True, 0.5)
    assert look.sequential_alpha < 0.01
    final = peeking([], 6000, 6000)
    assert (final.looks, final.early, final.sequential_alpha) == (1, False, pytest.approx(0.05))


def test_spent_alphas_of_all_looks_add_up_to_at_most_alpha() -> None:
    fractions = [0.2, 0.4, 0.6, 0.8, 1.0]
    total = sum(look_alpha(fractions[: k + 1]) for k in range(len(fractions)))
    assert total == pytest.approx(0.05)


def test_cuped_theta_is_the_regression_slope_and_reduces_variance_by_rho_squared() -> None:
    rng = np.random.default_rng(3)
    pre = rng.normal(1000, 300, 5000)
    post = 0.8 * pre + rng.normal(0, 150, 5000)
    found = cuped_theta(post, pre)
    slope = np.polyfit(pre, post, 1)[0]
    assert found.theta == pytest.approx(slope, rel=1e-9)
    rho = np.corrcoef(post, pre)[0, 1]
    adjusted = cuped_adjust(post, pre, found)
    assert found.variance_reduction == pytest.approx(rho**2)
    assert adjusted.var(ddof=1) == pytest.approx(post.var(ddof=1) * (1 - rho**2), rel=1e-9)
    assert adjusted.mean() == pytest.approx(post.mean())


def test_holm_adjustment_by_hand() -> None:
    assert holm_adjust({"a": 0.01, "b": 0.04, "c": 0.03}) == {
        "a": pytest.approx(0.03),
        "c": pytest.approx(0.06),
        "b": pytest.approx(0.06),
    }
