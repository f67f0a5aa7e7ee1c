"""Deterministic split: stable per customer, independent across experiments, shares as planned (no SRM)."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from marketloop.experiments.assignment import bucket, variant_for
from marketloop.experiments.design import sample_ratio
from marketloop.experiments.service import ExperimentService, ExperimentSpec
from marketloop.ports.experiments import VariantPlan

PLAN = (VariantPlan(name="holdout", share=1), VariantPlan(name="push", share=3), VariantPlan(name="sms", share=6))


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_the_same_customer_always_gets_the_same_variant(experiment_id: str, cust_no: str) -> None:
    assert 0.0 <= bucket(experiment_id, cust_no) < 1.0
    assert variant_for(experiment_id, PLAN, cust_no) == variant_for(experiment_id, PLAN, cust_no)


def test_shares_match_the_plan_and_experiments_split_independently() -> None:
    customers = [f"C{i:07d}" for i in range(60_000)]
    first = [variant_for("exp_a", PLAN, c) for c in customers]
    counts = {v.name: first.count(v.name) for v in PLAN}
    check = sample_ratio(counts, {v.name: v.share for v in PLAN})
    assert not check.mismatch
    assert check.p_value > 0.001
    second = [variant_for("exp_b", PLAN, c) for c in customers]
    crossed = pl.DataFrame({"a": first, "b": second}).group_by("a", "b").len()
    # independence: in each variant of exp_a, exp_b's holdout share is about 10 %
    for variant in ("holdout", "push", "sms"):
        rows = crossed.filter(pl.col("a") == variant)
        share = rows.filter(pl.col("b") == "holdout")["len"].sum() / rows["len"].sum()
        assert 0.08 < share < 0.12


def test_the_service_assigns_by_the_split(service: ExperimentService) -> None:
    service.create(
        ExperimentSpec(
            experiment_id="exp_split", name="分流", control="holdout", variants={"holdout": 1, "push": 1}, goal="buy"
        )
    )
    assert service.assign_customers("exp_split", [f"C{i}" for i in range(1000)]) == 1000
    assert service.assign_customers("exp_split", ["C1", "C2"]) == 0
    sizes = service.results("exp_split").funnel
    assert sum(row.targeted for row in sizes) == 1000
    assert all(400 < row.targeted < 600 for row in sizes)
