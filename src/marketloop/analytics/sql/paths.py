"""Paths (as Sankey nodes and links) and the attribution of conversions to touches.

Paths number each customer's events in the range (excluded events left
out) and take the `depth` events after — or before — the customer's first
`anchor`. A churn path anchors at the last event of each customer who was
then dormant: no event at all in the last `dormant` of the range.

Attribution pairs each conversion with its customer's touches in the
`lookback` before it (touches at the conversion's instant count) and
weighs each pair by every model at once.
"""

from __future__ import annotations

from marketloop.analytics.spec import ATTRIBUTION_MODELS, Attribution, Paths
from marketloop.analytics.sql.base import Builder, Query


def _anchors(q: Builder, spec: Paths) -> str:
    if spec.anchor is not None:
        return (
            f"SELECT {q.customer} AS cust_no, min(rn) AS rn0 FROM numbered "
            f"WHERE {q.match(spec.anchor)} GROUP BY {q.customer}"
        )
    assert spec.dormant is not None
    quiet_since = q.p.timestamp(spec.range.end - spec.dormant)
    everything = q.events(spec, start=spec.range.start, end=spec.range.end)
    return (
        f"SELECT {q.customer} AS cust_no, max(rn) AS rn0 FROM numbered\n  WHERE {q.customer} IN (\n"
        f"    SELECT {q.customer} FROM ({everything}) AS everything GROUP BY {q.customer} "
        f"HAVING max({q.time}) < {quiet_since}\n  )\n  GROUP BY {q.customer}"
    )


def paths(q: Builder, spec: Paths) -> Query:
    """facts: (cust_no, step, name): step 0 is the anchor, ±1 … ±depth the events after / before it.

    Result rows: kind "node" (step, source = event, customers) and kind "link" (step → step + 1, source → target).
    """
    scanned = q.events(spec, start=spec.range.start, end=spec.range.end)
    if spec.exclude:
        names = ", ".join(q.p.string(name) for name in spec.exclude)
        scanned += f"\n    AND {q.name} NOT IN ({names})"
    if spec.direction == "after":
        window = f"e.rn BETWEEN a.rn0 AND a.rn0 + {spec.depth}"
    else:
        window = f"e.rn BETWEEN a.rn0 - {spec.depth} AND a.rn0"
    facts = (
        f"SELECT a.cust_no, e.rn - a.rn0 AS step, e.{q.name} AS name\n  FROM anchors AS a\n"
        f"  JOIN numbered AS e ON e.{q.customer} = a.cust_no\n  WHERE {window}"
    )
    links = (
        "SELECT 'link' AS kind, f.step AS step, f.name AS source, t.name AS target, count(*) AS customers\n"
        "  FROM facts AS f JOIN facts AS t ON t.cust_no = f.cust_no AND t.step = f.step + 1\n"
        "  GROUP BY f.step, f.name, t.name"
    )
    select = (
        f"SELECT * FROM (\n  SELECT 'node' AS kind, step, name AS source, {q.d.null_text()} AS target, "
        "count(*) AS customers FROM facts GROUP BY step, name\n"
        "  UNION ALL SELECT kind, step, source, target, customers FROM links\n) AS graph\n"
        "ORDER BY kind, step, customers DESC, source, target"
    )
    return Query(
        steps=(
            ("scanned", scanned),
            ("numbered", q.numbered("scanned")),
            ("anchors", _anchors(q, spec)),
            ("facts", facts),
            ("links", links),
        ),
        select=select,
        cells={"step": "int", "name": "text"},
        suffix=q.d.suffix,
    )


def _weights(q: Builder, spec: Attribution) -> str:
    half_life = spec.half_life.total_seconds()
    decay = f"pow(2, -age / {half_life})"
    weights = {
        "first": "CASE WHEN k = 1 THEN 1.0 ELSE 0.0 END",
        "last": "CASE WHEN k = n THEN 1.0 ELSE 0.0 END",
        "linear": f"1.0 / {q.d.double('n')}",
        "position": (
            "CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5 WHEN k = 1 OR k = n THEN 0.4 "
            f"ELSE 0.2 / {q.d.double('n - 2')} END"
        ),
        "time_decay": f"{decay} / sum({decay}) OVER (PARTITION BY conversion)",
    }
    return ", ".join(f"{weights[model]} AS w_{model}" for model in ATTRIBUTION_MODELS)


def attribution(q: Builder, spec: Attribution) -> Query:
    """facts: (cust_no, kind, channel) per credited pair, or unattributed. Result: each channel's credit by model."""
    names = (spec.conversion.event, spec.touch.event)
    scanned = q.events(spec, start=spec.range.start - spec.lookback, end=spec.range.end, names=names)
    value = q.p.json_number(q.props, spec.value_property) if spec.value_property else "1.0"
    conversions = (
        f"SELECT {q.customer} AS cust_no, {q.time} AS ts, {q.mid} AS conversion, {value} AS value FROM scanned\n"
        f"  WHERE {q.match(spec.conversion)} AND {q.time} >= {q.p.timestamp(spec.range.start)}"
    )
    touches = (
        f"SELECT {q.customer} AS cust_no, {q.time} AS ts, {q.mid} AS touch, "
        f"{q.p.json_text(q.props, spec.channel)} AS channel FROM scanned WHERE {q.match(spec.touch)}"
    )
    order = "PARTITION BY c.conversion ORDER BY t.ts, t.touch"
    pairs = (
        f"SELECT c.conversion, c.cust_no, c.value, t.channel, {q.d.seconds('c.ts')} - {q.d.seconds('t.ts')} AS age,\n"
        f"    row_number() OVER ({order}) AS k, count(*) OVER (PARTITION BY c.conversion) AS n\n"
        "  FROM conversions AS c JOIN touches AS t ON t.cust_no = c.cust_no\n"
        f"  WHERE t.ts <= c.ts AND t.ts > c.ts - {q.p.interval(spec.lookback)}"
    )
    weighted = f"SELECT conversion, cust_no, value, channel, {_weights(q, spec)} FROM pairs"
    credited = ", ".join(
        f"sum(w_{m}) AS {m}, sum(w_{m} * {q.d.double('coalesce(value, 0)')}) AS value_{m}" for m in ATTRIBUTION_MODELS
    )
    zeros = ", ".join(f"0.0 AS {m}, 0.0 AS value_{m}" for m in ATTRIBUTION_MODELS)
    select = (
        f"SELECT * FROM (\n  SELECT 'touch' AS kind, channel, count(DISTINCT conversion) AS conversions, {credited}\n"
        "  FROM weighted GROUP BY channel\n"
        f"  UNION ALL SELECT 'unattributed' AS kind, {q.d.null_text()} AS channel, count(*) AS conversions, {zeros}\n"
        "  FROM conversions WHERE conversion NOT IN (SELECT conversion FROM pairs)\n) AS credit\n"
        "ORDER BY kind, channel"
    )
    facts = (
        "SELECT cust_no, 'touch' AS kind, channel FROM weighted\n"
        f"  UNION ALL SELECT cust_no, 'unattributed' AS kind, {q.d.null_text()} AS channel FROM conversions\n"
        "  WHERE conversion NOT IN (SELECT conversion FROM pairs)"
    )
    return Query(
        steps=(
            ("scanned", scanned),
            ("conversions", conversions),
            ("touches", touches),
            ("pairs", pairs),
            ("weighted", weighted),
            ("facts", facts),
        ),
        select=select,
        cells={"kind": "text", "channel": "text"},
        suffix=q.d.suffix,
    )
