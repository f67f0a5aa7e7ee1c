"""A rule tag's SQL (through the DuckDB printer) and the Python evaluator give every customer the same value.

Random banks (`marketloop.testing.segments.random_bank`) and random value
tags built from a pool of conditions of every kind: the first matching case
wins, else the `else` value, else no value.
"""

from __future__ import annotations

import random

import duckdb
import pytest

from marketloop.segments.catalog import DEFAULT_CATALOG
from marketloop.segments.evaluate import evaluate
from marketloop.tags.compile import tag_query
from marketloop.tags.definitions import bind_rule, parse_rule
from marketloop.testing.segments import AS_OF, ddl, facts, inserts, random_bank, tables

CONDITIONS = (
    "age >= 40",
    "aum between 1000 and 15000",
    'vip_level = "gold"',
    'city in ("上海", "杭州")',
    "last_seen_at >= now-7d",
    "open_date >= today-200d",
    "did login at least 2 times within 30d",
    "did view_wealth then buy_wealth within 1d in last 30d",
    'holds(product_type = "wealth")',
    'transacted(direction = "out", within = 30d)',
    'tag rfm = "a"',
    "not tag lifecycle",
    "age is null or aum_trend_pct < 0",
)


@pytest.mark.parametrize("seed", range(6))
def test_sql_and_evaluator_agree_on_random_value_tags(seed: int) -> None:
    rng = random.Random(seed)
    bank = random_bank(rng, 50)
    con = duckdb.connect(":memory:")
    for name, columns, rows in tables(bank):
        con.execute(ddl("duckdb", name, columns))
        insert = inserts("duckdb", name, columns, rows)
        if insert:
            con.execute(insert)
    cases = [{"when": text, "value": f"v{i}"} for i, text in enumerate(rng.sample(CONDITIONS, rng.randint(1, 4)))]
    document: dict[str, object] = {"cases": cases} | ({"else": "rest"} if rng.random() < 0.5 else {})
    rule = bind_rule("random", parse_rule(document), DEFAULT_CATALOG)
    found = dict(con.execute(tag_query(rule, AS_OF, "duckdb", DEFAULT_CATALOG).sql).fetchall())
    expected = {}
    for cust_no, customer in facts(bank).items():
        value = next((v for bound, v in rule.cases if evaluate(bound, customer, AS_OF)), rule.otherwise)
        if value is not None:
            expected[cust_no] = value
    assert found == expected
    boolean = bind_rule("yes_no", parse_rule({"when": cases[0]["when"]}), DEFAULT_CATALOG)
    members = dict(con.execute(tag_query(boolean, AS_OF, "duckdb", DEFAULT_CATALOG).sql).fetchall())
    ((first, _),) = boolean.cases
    assert members == {c: "true" for c, customer in facts(bank).items() if evaluate(first, customer, AS_OF)}
