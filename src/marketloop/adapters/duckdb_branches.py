"""`BranchDirectory` on DuckDB: the `branches` hierarchy and each customer's branch and RM, from the bank tables.

A branch's subtree is cached for `cache_seconds`: every request of a branch
user asks for it, and the hierarchy changes only with an import.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import duckdb

from marketloop.adapters.duckdb_bank import table_ddl
from marketloop.core.bank import BRANCHES, CUSTOMERS, RM_ASSIGNMENTS

_SUBTREE = """
WITH RECURSIVE tree(branch_id) AS (
    SELECT CAST(? AS VARCHAR)
    UNION
    SELECT b.branch_id FROM branches b JOIN tree t ON b.parent_id = t.branch_id
)
SELECT branch_id FROM tree
"""

# The RM in force today (as the customer profile takes it): the newest current assignment, else customers.rm_id.
_OWNER = """
SELECT c.branch_id, coalesce(
    (SELECT arg_max(r.rm_id, r.valid_from) FROM rm_assignments r
     WHERE r.cust_no = c.cust_no AND r.valid_from <= current_date
       AND coalesce(r.valid_to, current_date) >= current_date),
    c.rm_id)
FROM customers c WHERE c.cust_no = ?
"""


class DuckDBBranchDirectory:
    """See the module docstring."""

    def __init__(
        self,
        cursor: Callable[[], duckdb.DuckDBPyConnection],
        write_lock: threading.Lock,
        *,
        cache_seconds: float = 30.0,
    ) -> None:
        self._cursor = cursor
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, frozenset[str] | None]] = {}
        with write_lock:
            for table in (BRANCHES, CUSTOMERS, RM_ASSIGNMENTS):
                cursor().execute(table_ddl(table))

    def subtree(self, branch_id: str) -> frozenset[str] | None:
        now = time.monotonic()
        hit = self._cache.get(branch_id)
        if hit is not None and now - hit[0] < self._cache_seconds:
            return hit[1]
        found = self._subtree(branch_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[branch_id] = (now, found)
        return found

    def _subtree(self, branch_id: str) -> frozenset[str] | None:
        con = self._cursor()
        row = con.execute("SELECT parent_id FROM branches WHERE branch_id = ?", [branch_id]).fetchone()
        if row is not None and row[0] is None:
            return None  # the head office sees everything
        return frozenset(str(r[0]) for r in con.execute(_SUBTREE, [branch_id]).fetchall())

    def owner(self, cust_no: str) -> tuple[str | None, str | None] | None:
        row = self._cursor().execute(_OWNER, [cust_no]).fetchone()
        return None if row is None else (row[0], row[1])
