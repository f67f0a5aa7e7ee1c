"""Rows of an analysis query → the result a chart draws, each number with the `cell` that names it.

A `cell` is the coordinates of a number in `facts` (see `sql.base`): sent
back with the spec to `AnalyticsService.customers`, it lists exactly the
customers the number counts. Rates and drop-offs are derived here, from the
counts the warehouse returned.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from marketloop.analytics import spec as s
from marketloop.analytics.parse import spec_error

Row = dict[str, Any]


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _events(spec: s.EventAnalysis, rows: list[Row]) -> dict[str, Any]:
    held = sum(int(r.get("held") or 0) for r in rows)
    if held and not any(r.get("numbers") for r in rows):
        raise spec_error(
            "/property",
            f"property {spec.property!r} is not numeric: {held} matching events hold it, none as a number; "
            f"{spec.measure} needs numbers (count or customers count any value)",
        )
    series = [
        {
            "bucket": r["bucket"],
            "group": r["grp"],
            "value": _number(r["value"]),
            "cell": {"bucket": r["bucket"], "grp": r["grp"]},
        }
        for r in rows
    ]
    return {"measure": spec.measure, "interval": spec.interval, "series": series}


def _funnel(spec: s.Funnel, rows: list[Row]) -> dict[str, Any]:
    groups: dict[Any, dict[int, Row]] = {}
    for row in rows:
        groups.setdefault(row["grp"], {})[int(row["step"])] = row
    found = []
    for group, steps in sorted(groups.items(), key=lambda item: (item[0] is None, str(item[0]))):
        entered = int(steps[1]["customers"]) if 1 in steps else 0
        listed, previous = [], entered
        for k, step in enumerate(spec.steps, start=1):
            count = int(steps[k]["customers"]) if k in steps else 0
            median = _number(steps[k]["median_seconds"]) if k in steps else None
            listed.append(
                {
                    "step": k,
                    "event": step.event,
                    "customers": count,
                    "conversion": _rate(count, entered),
                    "step_conversion": _rate(count, previous),
                    "drop_off": previous - count,
                    "median_seconds_to_convert": median,
                    "cell": {"grp": group, "step": k},
                }
            )
            previous = count
        found.append({"group": group, "steps": listed})
    return {"strict": spec.strict, "window_seconds": int(spec.window.total_seconds()), "groups": found}


def _retention(spec: s.Retention, rows: list[Row]) -> dict[str, Any]:
    cohorts: dict[str, dict[int, int]] = {}
    for row in rows:
        cohorts.setdefault(row["cohort"], {})[int(row["period"])] = int(row["customers"])
    order = [c.name for c in spec.cohorts] if spec.cohorts else sorted(cohorts)
    found = []
    for name in order:
        periods = cohorts.get(name, {})
        size = periods.get(-1, 0)
        retained = [
            {
                "period": n,
                "customers": periods.get(n, 0),
                "rate": _rate(periods.get(n, 0), size),
                "cell": {"cohort": name, "period": n},
            }
            for n in range(spec.periods + 1)
        ]
        found.append({"cohort": name, "customers": size, "cell": {"cohort": name, "period": -1}, "retained": retained})
    return {"unit": spec.unit, "periods": spec.periods, "cohorts": found}


def _node_id(step: int, event: str) -> str:
    return f"{step}:{event}"


def _paths(spec: s.Paths, rows: list[Row]) -> dict[str, Any]:
    nodes = [r for r in rows if r["kind"] == "node"]
    links = sorted(
        (r for r in rows if r["kind"] == "link"),
        key=lambda r: (int(r["step"]), -int(r["customers"]), r["source"], r["target"]),
    )
    kept: list[Row] = []
    per_step: dict[int, int] = {}
    for link in links:
        step = int(link["step"])
        if per_step.get(step, 0) < spec.top:
            kept.append(link)
            per_step[step] = per_step.get(step, 0) + 1
    return {
        "direction": spec.direction,
        "churn": spec.dormant is not None,
        "nodes": [
            {
                "id": _node_id(int(n["step"]), n["source"]),
                "step": int(n["step"]),
                "event": n["source"],
                "customers": int(n["customers"]),
                "cell": {"step": int(n["step"]), "name": n["source"]},
            }
            for n in sorted(nodes, key=lambda r: (int(r["step"]), -int(r["customers"]), r["source"]))
        ],
        "links": [
            {
                "source": _node_id(int(link["step"]), link["source"]),
                "target": _node_id(int(link["step"]) + 1, link["target"]),
                "customers": int(link["customers"]),
                "cell": {"step": int(link["step"]), "name": link["source"], "next": link["target"]},
            }
            for link in kept
        ],
    }


def _attribution(spec: s.Attribution, rows: list[Row]) -> dict[str, Any]:
    channels = []
    unattributed = 0
    for row in rows:
        if row["kind"] == "unattributed":
            unattributed = int(row["conversions"])
            continue
        channels.append(
            {
                "channel": row["channel"],
                "conversions": int(row["conversions"]),
                "credit": {m: round(float(row[m]), 6) for m in s.ATTRIBUTION_MODELS},
                "value": {m: round(float(row[f"value_{m}"]), 6) for m in s.ATTRIBUTION_MODELS},
                "cell": {"kind": "touch", "channel": row["channel"]},
            }
        )
    channels.sort(key=lambda c: (-c["credit"]["linear"], str(c["channel"])))
    attributed = round(sum(c["credit"]["linear"] for c in channels))
    return {
        "models": list(s.ATTRIBUTION_MODELS),
        "conversions": attributed + unattributed,
        "unattributed": unattributed,
        "unattributed_cell": {"kind": "unattributed", "channel": None},
        "channels": channels,
    }


def _frequency(spec: s.Frequency, rows: list[Row]) -> dict[str, Any]:
    buckets = [{"k": int(r["k"]), "customers": int(r["customers"]), "cell": {"k": int(r["k"])}} for r in rows]
    return {"measure": spec.measure, "customers": sum(b["customers"] for b in buckets), "buckets": buckets}


def _distribution(spec: s.Distribution, rows: list[Row]) -> dict[str, Any]:
    if spec.bins:
        bins = [
            {
                "bin": r["bin"],
                "label": r["label"] if r["bin"] is not None else "(none)",
                "events": int(r["events"]),
                "customers": int(r["customers"]),
                "cell": {"bin": r["bin"]},
            }
            for r in rows
        ]
        return {"property": spec.property, "bins": bins}
    values = [
        {
            "value": r["label"],
            "events": int(r["events"]),
            "customers": int(r["customers"]),
            "cell": {"label": r["label"]},
        }
        for r in rows
    ]
    return {"property": spec.property, "values": values}


_SHAPERS: dict[type[Any], Callable[[Any, list[Row]], dict[str, Any]]] = {
    s.EventAnalysis: _events,
    s.Funnel: _funnel,
    s.Retention: _retention,
    s.Paths: _paths,
    s.Attribution: _attribution,
    s.Frequency: _frequency,
    s.Distribution: _distribution,
}
MODEL_NAMES: dict[type[Any], str] = {
    s.EventAnalysis: "events",
    s.Funnel: "funnel",
    s.Retention: "retention",
    s.Paths: "paths",
    s.Attribution: "attribution",
    s.Frequency: "frequency",
    s.Distribution: "distribution",
}


def shape(spec: s.Spec, rows: list[Row]) -> dict[str, Any]:
    """The result of `spec` from its query's rows (plain JSON-serialisable data)."""
    return {"model": MODEL_NAMES[type(spec)]} | _SHAPERS[type(spec)](spec, rows)
