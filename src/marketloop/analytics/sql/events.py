"""Event analysis, stickiness / frequency and property distributions: one scan of the matching events each."""

from __future__ import annotations

import itertools

from marketloop.analytics.spec import Distribution, EventAnalysis, Frequency
from marketloop.analytics.sql.base import Builder, CellKind, Query


def event_analysis(q: Builder, spec: EventAnalysis) -> Query:
    """facts: (cust_no, bucket, grp, v) per event; result: (bucket, grp, value)."""
    matching = f"{q.events(spec, start=spec.range.start, end=spec.range.end)}\n    AND {q.match(spec.event)}"
    bucket = "'total'" if spec.interval == "total" else q.d.bucket("e." + q.time, spec.timezone, spec.interval)
    measured = q.p.json_number("e." + q.props, spec.property) if spec.property else "NULL"
    # sum / avg also count the events that hold the property at all: one that is never a number is an error
    summed = spec.measure in ("sum", "avg") and spec.property is not None
    raw = f", {q.p.json_text('e.' + q.props, spec.property)} AS raw" if summed and spec.property else ""
    facts = (
        f"SELECT e.{q.customer} AS cust_no, {bucket} AS bucket, {q.group_value(spec.group_by, 'e.')} AS grp, "
        f"{measured} AS v{raw}\n  FROM matching AS e{q.group_join(spec.group_by, 'e.' + q.customer)}"
    )
    value = {
        "count": "count(*)",
        "customers": "count(DISTINCT cust_no)",
        "sum": f"sum({q.d.double('v')})",
        "avg": f"avg({q.d.double('v')})",
    }[spec.measure]
    held = ", count(raw) AS held, count(v) AS numbers" if raw else ""
    select = f"SELECT bucket, grp, {value} AS value{held}\nFROM facts\nGROUP BY bucket, grp\nORDER BY bucket, grp"
    return Query(
        steps=(("matching", matching), ("facts", facts)),
        select=select,
        cells={"bucket": "text", "grp": "text"},
        suffix=q.d.suffix,
    )


def frequency(q: Builder, spec: Frequency) -> Query:
    """facts: (cust_no, k) — days with the event (stickiness) or times it was done; result: (k, customers)."""
    matching = f"{q.events(spec, start=spec.range.start, end=spec.range.end)}\n    AND {q.match(spec.event)}"
    counted = f"count(DISTINCT {q.d.local_date(q.time, spec.timezone)})" if spec.measure == "days" else "count(*)"
    facts = f"SELECT {q.customer} AS cust_no, {counted} AS k\n  FROM matching\n  GROUP BY {q.customer}"
    return Query(
        steps=(("matching", matching), ("facts", facts)),
        select="SELECT k, count(*) AS customers\nFROM facts\nGROUP BY k\nORDER BY k",
        cells={"k": "int"},
        suffix=q.d.suffix,
    )


def distribution(q: Builder, spec: Distribution) -> Query:
    """facts: (cust_no, bin, value) per event; result: (bin, label, events, customers)."""
    matching = f"{q.events(spec, start=spec.range.start, end=spec.range.end)}\n    AND {q.match(spec.event)}"
    if spec.bins:
        number = q.p.json_number(q.props, spec.property)
        edges = [q.p.number(edge) for edge in spec.bins]
        labels = [f"< {edges[0]}"] + [f"[{low}, {high})" for low, high in itertools.pairwise(edges)]
        cases = " ".join(f"WHEN {number} < {edge} THEN {i}" for i, edge in enumerate(edges))
        bin_of = f"CASE WHEN {number} IS NULL THEN NULL {cases} ELSE {len(edges)} END"
        label_cases = " ".join(f"WHEN {i} THEN {q.p.string(text)}" for i, text in enumerate(labels))
        label_of = f"CASE bin {label_cases} WHEN {len(edges)} THEN {q.p.string('>= ' + edges[-1])} ELSE NULL END"
        facts = f"SELECT {q.customer} AS cust_no, {bin_of} AS bin\n  FROM matching"
        select = (
            f"SELECT bin, {label_of} AS label, count(*) AS events, count(DISTINCT cust_no) AS customers\n"
            "FROM facts\nGROUP BY bin\nORDER BY bin"
        )
        cells: dict[str, CellKind] = {"bin": "int"}
    else:
        facts = f"SELECT {q.customer} AS cust_no, {q.p.json_text(q.props, spec.property)} AS label\n  FROM matching"
        select = (
            "SELECT label, count(*) AS events, count(DISTINCT cust_no) AS customers\n"
            f"FROM facts\nGROUP BY label\nORDER BY events DESC, label\nLIMIT {spec.top}"
        )
        cells = {"label": "text"}
    return Query(steps=(("matching", matching), ("facts", facts)), select=select, cells=cells, suffix=q.d.suffix)
