"""Funnels and retention: chains of step events per customer, and returns after a first event.

A funnel chain starts at any step-1 event in the range and takes, at each
next step, the earliest matching event after the previous step and no later
than `window` after the start (greedy is exact: if any chain from that
start reaches step k, the earliest-next chain does). In strict order the
next step must be the customer's very next event (events numbered per
customer in time order, ties by message_id). Steps after the first may fall
up to `window` after the range's end.
"""

from __future__ import annotations

from datetime import timedelta

from marketloop.analytics.spec import Funnel, Retention
from marketloop.analytics.sql.base import Builder, Query


def _chain(q: Builder, spec: Funnel) -> list[tuple[str, str]]:
    within = q.p.interval(spec.window)
    number = ", rn" if spec.strict else ""
    steps = [("c1", f"SELECT cust_no, ts AS t0, ts AS t1{number.replace('rn', 'rn AS n1')} FROM s1")]
    for k in range(2, len(spec.steps) + 1):
        if spec.strict:
            body = (
                f"SELECT c.cust_no, c.t0, e.ts AS t{k}, e.rn AS n{k}\n  FROM c{k - 1} AS c\n"
                f"  JOIN s{k} AS e ON e.cust_no = c.cust_no AND e.rn = c.n{k - 1} + 1\n"
                f"  WHERE e.ts <= c.t0 + {within}"
            )
        else:
            body = (
                f"SELECT c.cust_no, c.t0, min(e.ts) AS t{k}\n  FROM c{k - 1} AS c\n"
                f"  JOIN s{k} AS e ON e.cust_no = c.cust_no\n"
                f"  WHERE e.ts > c.t{k - 1} AND e.ts <= c.t0 + {within}\n  GROUP BY c.cust_no, c.t0"
            )
        steps.append((f"c{k}", body))
    return steps


def funnel(q: Builder, spec: Funnel) -> Query:
    """facts: (cust_no, grp, step, secs) per customer and step reached; result: (grp, step, customers, median)."""
    names = () if spec.strict else tuple(s.event for s in spec.steps)
    source = q.events(spec, start=spec.range.start, end=spec.range.end + spec.window, names=names)
    steps: list[tuple[str, str]] = [("scanned", q.numbered(f"({source}) AS scanned") if spec.strict else source)]
    number = ", rn" if spec.strict else ""
    by_event = spec.group_by is None or spec.group_by.property is not None
    for k, step in enumerate(spec.steps, start=1):
        before_end = f" AND {q.time} < {q.p.timestamp(spec.range.end)}" if k == 1 else ""
        group = f", {q.group_value(spec.group_by)} AS g" if k == 1 and by_event else ""
        body = f"SELECT {q.customer} AS cust_no, {q.time} AS ts{number}{group} FROM scanned WHERE {q.match(step)}"
        steps.append((f"s{k}", body + before_end))
    steps += _chain(q, spec)
    reached = "\n  UNION ALL ".join(
        f"SELECT cust_no, {k} AS step, min({q.d.seconds(f't{k}')} - {q.d.seconds('t0')}) AS secs "
        f"FROM c{k} GROUP BY cust_no"
        for k in range(1, len(spec.steps) + 1)
    )
    first = (
        f"SELECT s.cust_no, {q.d.arg_min('s.g', 's.ts')} AS grp FROM s1 AS s GROUP BY s.cust_no"
        if by_event
        else f"SELECT s.cust_no, {q.group_value(spec.group_by)} AS grp\n"
        f"  FROM (SELECT DISTINCT cust_no FROM s1) AS s{q.group_join(spec.group_by, 's.cust_no')}"
    )
    steps += [
        ("reached", reached),
        ("firsts", first),
        (
            "facts",
            "SELECT r.cust_no, f.grp, r.step, r.secs FROM reached AS r JOIN firsts AS f ON f.cust_no = r.cust_no",
        ),
    ]
    select = (
        f"SELECT grp, step, count(*) AS customers, {q.d.median('secs')} AS median_seconds\n"
        "FROM facts\nGROUP BY grp, step\nORDER BY grp, step"
    )
    return Query(steps=tuple(steps), select=select, cells={"grp": "text", "step": "int"}, suffix=q.d.suffix)


def retention(q: Builder, spec: Retention) -> Query:
    """facts: (cust_no, cohort, period); period -1 is the cohort itself. Result: (cohort, period, customers)."""
    days = spec.periods * (7 if spec.unit == "week" else 1) + 1
    names = (spec.start.event, spec.back.event)
    scanned = q.events(spec, start=spec.range.start, end=spec.range.end + timedelta(days=days), names=names)
    firsts = (
        f"SELECT {q.customer} AS cust_no, min({q.time}) AS t0 FROM scanned\n"
        f"  WHERE {q.match(spec.start)} AND {q.time} < {q.p.timestamp(spec.range.end)}\n  GROUP BY {q.customer}"
    )
    if spec.cohorts:
        cohort = "\n  UNION ALL ".join(
            f"SELECT cust_no, t0, {q.p.string(c.name)} AS cohort FROM firsts WHERE cust_no IN (\n    "
            + q.members_sql(c.definition, spec.range.end).replace("\n", "\n    ")
            + "\n  )"
            for c in spec.cohorts
        )
    else:
        cohort = f"SELECT cust_no, t0, {q.d.bucket('t0', spec.timezone, spec.unit)} AS cohort FROM firsts"
    diff = q.d.days_between(q.d.local_date("c.t0", spec.timezone), q.d.local_date("b.ts", spec.timezone))
    period = q.d.int_div(diff, 7) if spec.unit == "week" else diff
    returns = (
        f"SELECT DISTINCT c.cust_no, c.cohort, {period} AS period\n  FROM cohorts AS c\n"
        f"  JOIN (SELECT {q.customer} AS cust_no, {q.time} AS ts FROM scanned WHERE {q.match(spec.back)}) AS b"
        f" ON b.cust_no = c.cust_no\n  WHERE b.ts >= c.t0 AND {period} <= {spec.periods}"
    )
    facts = "SELECT cust_no, cohort, -1 AS period FROM cohorts\n  UNION ALL SELECT cust_no, cohort, period FROM returns"
    return Query(
        steps=(("scanned", scanned), ("firsts", firsts), ("cohorts", cohort), ("returns", returns), ("facts", facts)),
        select="SELECT cohort, period, count(*) AS customers\nFROM facts\n"
        "GROUP BY cohort, period\nORDER BY cohort, period",
        cells={"cohort": "text", "period": "int"},
        suffix=q.d.suffix,
    )
