"""Lookalike expansion recovers a planted group on synthetic data, reports AUC and importances, is deterministic."""

from __future__ import annotations

import random
from typing import Any

import polars as pl
import pytest

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.segments.evaluate import CustomerFacts
from marketloop.testing.segments import AS_OF

CUSTOMERS = 1500
PROFILE = """
CREATE TABLE customer_profile (
    cust_no VARCHAR, age BIGINT, aum DECIMAL(18, 2), logins_30d BIGINT, fund_page_views_30d BIGINT,
    payroll_customer BOOLEAN, vip_tier VARCHAR
)
"""


def plant(con: Any) -> set[str]:
    """Customers of whom 20% form a group (young-ish, wealthy, active on funds); half of the group is on payroll.

    Returns the planted group. Payroll (the seed's definition) is also noise outside the group.
    """
    rng = random.Random(11)
    con.execute("CREATE TABLE customers (cust_no VARCHAR, gender VARCHAR, city_tier BIGINT, status VARCHAR)")
    con.execute(PROFILE)
    group: set[str] = set()
    customers, profiles = [], []
    for i in range(CUSTOMERS):
        cust_no = f"C{i:05d}"
        planted = rng.random() < 0.2
        if planted:
            group.add(cust_no)
        age = rng.randint(30, 38) if planted else rng.randint(20, 70)
        aum = round(rng.lognormvariate(13 if planted else 10.5, 0.8), 2)
        logins = rng.randint(8, 20) if planted else rng.randint(0, 12)
        fund_views = rng.randint(3, 10) if planted else rng.randint(0, 4)
        payroll = rng.random() < (0.5 if planted else 0.05)
        status = "closed" if i % 100 == 99 else "active"
        customers.append((cust_no, rng.choice(["M", "F"]), rng.randint(1, 5), status))
        profiles.append((cust_no, age, aum, logins, fund_views, payroll, rng.choice(["standard", "gold", None])))
    for table, rows in (("customers", customers), ("customer_profile", profiles)):
        frame = pl.DataFrame(rows, schema=con.table(table).columns, orient="row")
        con.register("frame", frame)
        con.execute(f"INSERT INTO {table} SELECT * FROM frame")
        con.unregister("frame")
    return group


@pytest.fixture
def planted(stack: Any) -> tuple[Any, set[str], Any]:
    group = plant(stack.con)
    seed = stack.segments.save("代发客户", "payroll_customer = true")
    return stack, group, seed


def test_lookalike_recovers_the_planted_group(planted: tuple[Any, set[str], Any]) -> None:
    stack, group, seed = planted
    seed_members = set(stack.segments.preview("payroll_customer = true", as_of=AS_OF, limit=10_000))
    hidden = group - seed_members
    result = stack.lookalikes.expand(seed.segment_id, size=len(hidden), as_of=AS_OF)
    report = result.report
    chosen = {m.cust_no for m in result.members}
    assert len(chosen) == report.size == len(hidden)
    assert not chosen & seed_members
    precision = len(chosen & hidden) / len(chosen)
    base_rate = len(hidden) / report.candidates
    assert precision > 0.6 > 3 * base_rate, (precision, base_rate)
    assert report.auc > 0.7
    assert report.excluded == ["payroll_customer"]
    assert "payroll_customer" not in report.features
    assert {i.feature for i in report.importances[:2]} <= {"age", "aum", "fund_page_views_30d", "logins_30d"}
    aum = next(i for i in report.importances if i.feature == "aum")
    assert aum.seed_mean is not None
    assert aum.others_mean is not None
    assert aum.seed_mean > aum.others_mean
    assert [m.score for m in result.members] == sorted((m.score for m in result.members), reverse=True)
    assert report.lowest_score == result.members[-1].score

    # the expansion is a saved static segment that counts like any other, with its report kept
    assert stack.segments.count(f'segment "{result.segment.segment_id}"', as_of=AS_OF).count == len(chosen)
    assert stack.lookalikes.report(result.segment.segment_id).report["auc"] == report.auc
    assert stack.segments.compiled(result.segment.segment_id).matches(
        CustomerFacts(cust_no=result.members[0].cust_no), AS_OF
    )

    again = stack.lookalikes.expand(seed.segment_id, size=len(hidden), as_of=AS_OF)
    assert again.members == result.members
    assert again.report.auc == report.auc


def test_lookalike_threshold_and_errors(planted: tuple[Any, set[str], Any]) -> None:
    stack, _, seed = planted
    above = stack.lookalikes.expand(seed.segment_id, min_score=0.9, as_of=AS_OF, name="很像的")
    assert above.segment.name == "很像的"
    assert all(m.score >= 0.9 for m in above.members)
    for arguments, pointer in [({}, "/size"), ({"size": 0}, "/size"), ({"min_score": 1.5}, "/min_score")]:
        with pytest.raises(MarketloopError) as raised:
            stack.lookalikes.expand(seed.segment_id, as_of=AS_OF, **arguments)
        assert raised.value.errors[0].pointer == pointer
    with pytest.raises(MarketloopError) as raised:
        stack.lookalikes.expand(seed.segment_id, size=10, as_of=AS_OF, exclude=["aum", "salary"])
    assert (raised.value.errors[0].pointer, raised.value.title) == ("/exclude", "not a feature: salary")
    leaky = stack.lookalikes.expand(seed.segment_id, size=10, as_of=AS_OF, keep_defining_fields=True)
    assert leaky.report.auc > 0.98
    assert leaky.report.importances[0].feature == "payroll_customer"
    assert "payroll_customer" in leaky.report.warnings[0]
    fewer = stack.lookalikes.expand(seed.segment_id, size=10, as_of=AS_OF, exclude=["aum"])
    assert fewer.report.excluded == ["aum", "payroll_customer"]
    assert "aum" not in fewer.report.features
    assert fewer.report.warnings == []
    tiny = stack.segments.save("一个人", 'cust_no = "C00001"')
    with pytest.raises(MarketloopError) as raised:
        stack.lookalikes.expand(tiny.segment_id, size=10, as_of=AS_OF)
    assert (raised.value.kind, raised.value.code) == (ErrorKind.INVALID, "segments.lookalike-too-small")
    with pytest.raises(MarketloopError) as raised:
        stack.lookalikes.expand(seed.segment_id, min_score=1.0, as_of=AS_OF)
    assert raised.value.code == "segments.lookalike-empty"
    with pytest.raises(MarketloopError) as raised:
        stack.lookalikes.report(seed.segment_id)
    assert raised.value.kind == ErrorKind.NOT_FOUND
