"""Which warehouse tables writers changed, and how often (`data_changes`): part of the analytics data version.

Analyses read more than events: the customers and the other core-banking
tables (imports), the 360° profile (refreshes), the tags (refreshes and
uploads), the OneID links behind `customer_events`. Each writer of those
calls `mark_changed` inside the transaction that writes them, so the counter
and the data commit together and a reader of one snapshot sees both or
neither. Counters only grow, so a version string never comes back for other
data. Events are versioned by their own load sequence and row count instead
(loads are the hot path; they write nothing more).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import duckdb

T = TypeVar("T")

SCHEMA = "CREATE TABLE IF NOT EXISTS data_changes (relation VARCHAR PRIMARY KEY, changes BIGINT NOT NULL)"
_MARK = "INSERT INTO data_changes VALUES (?, 1) ON CONFLICT (relation) DO UPDATE SET changes = changes + 1"
# One string for every counter, in one statement (one snapshot); '' while nothing was marked.
CHANGES_SQL = "SELECT coalesce(string_agg(relation || ':' || changes, ',' ORDER BY relation), '') FROM data_changes"


def in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], T]) -> T:
    """`work()` in one transaction of `con`: committed when it returns, rolled back when it raises."""
    con.execute("BEGIN")
    try:
        result = work()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return result


def mark_changed(con: duckdb.DuckDBPyConnection, *relations: str) -> None:
    """Count one more change of each relation; call it in the writer's transaction, holding the write lock."""
    con.executemany(_MARK, [[relation] for relation in relations])
