"""Analysis specs → SQL: one compiler per model over a dialect's spelling (`analytics.dialects`).

`compile_spec` checks what only the catalog can check (a customer field to
group by), then builds the model's `Query`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from marketloop.analytics import spec as s
from marketloop.analytics.dialects import dialect_for
from marketloop.analytics.parse import from_definition_error, spec_error
from marketloop.analytics.sql.base import Builder, MembersSql, Query
from marketloop.analytics.sql.events import distribution, event_analysis, frequency
from marketloop.analytics.sql.funnels import funnel, retention
from marketloop.analytics.sql.paths import attribution, paths
from marketloop.segments.catalog import Catalog
from marketloop.segments.errors import DefinitionError

_COMPILERS: dict[type[Any], Callable[[Builder, Any], Query]] = {
    s.EventAnalysis: event_analysis,
    s.Funnel: funnel,
    s.Retention: retention,
    s.Paths: paths,
    s.Attribution: attribution,
    s.Frequency: frequency,
    s.Distribution: distribution,
}


def compile_spec(
    spec: s.Spec, dialect: str, catalog: Catalog, members: MembersSql | None = None, *, within: str | None = None
) -> Query:
    """The query of `spec` in `dialect` (duckdb, clickhouse); `members` prints segment membership.

    `within` (SQL selecting cust_nos) keeps only those customers' events: the caller's data scope.

    Raises `SpecError` for a group-by field the catalog does not have, and
    for a bad segment restriction or step filter (the segment engine's
    problems, with their JSON pointers).
    """
    group = getattr(spec, "group_by", None)
    if group is not None and group.field is not None and catalog.field(group.field) is None:
        close = difflib.get_close_matches(group.field, catalog.names(), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise spec_error("/group_by/field", f"unknown customer field {group.field!r}{hint}")
    try:
        return _COMPILERS[type(spec)](Builder(dialect_for(dialect, catalog), catalog, members, within=within), spec)
    except DefinitionError as error:
        raise from_definition_error(error) from None


__all__ = ["MembersSql", "Query", "compile_spec"]
