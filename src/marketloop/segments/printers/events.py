"""The SQL of behaviour and transactions: aggregate scans, sequences and absences, as subquery lines.

- An aggregate scan reads the union window once, keeps rows matching any
  of its tests and groups by customer; each test is a filtered count in
  HAVING (no grouping at all for a single "at least once").
- A sequence is a chain of joins, each step taking the earliest matching
  event after the previous one and within `within` of the first (greedy
  is exact: if any chain fits, the earliest-next chain fits).
- An absence keeps the `first` events at least `within` old, EXCEPT those
  followed by a `then_not` within `within`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from marketloop.segments import bound as b
from marketloop.segments.printers.spelling import SQL_OPS, Spelling


class EventScans(Spelling):
    def event_match(self, match: b.EventMatch) -> str:
        events = self.catalog.events
        parts = [f"{self.ident(events.name)} = {self.string(match.event)}"]
        for test in match.where:
            column = self.ident(events.properties)
            if isinstance(test.value, Decimal):
                extracted = self.json_number(column, test.property)
                parts.append(f"{extracted} {SQL_OPS[test.op]} {self.number(test.value)}")
            else:
                text = self.boolean(test.value) if isinstance(test.value, bool) else test.value
                parts.append(f"{self.json_text(column, test.property)} {SQL_OPS[test.op]} {self.string(text)}")
        return " AND ".join(parts)

    def txn_match(self, test: b.TxnTest) -> str:
        columns = (
            ("direction", test.direction),
            ("counterparty_type", test.counterparty_type),
            ("channel", test.channel),
            ("category", test.category),
        )
        parts = [f"{self.ident(column)} = {self.string(value)}" for column, value in columns if value is not None]
        parts += [f"amount >= {self.number(test.min_amount)}"] if test.min_amount is not None else []
        parts += [f"amount <= {self.number(test.max_amount)}"] if test.max_amount is not None else []
        return " AND ".join(parts) or "true"

    # -- aggregate scans ---------------------------------------------------------

    def _scan_source(self, node: b.AggregateScan) -> tuple[str, str, str]:
        """(relation, customer column, time column) of the scanned log."""
        if node.source == "events":
            events = self.catalog.events
            return self.ident(events.relation), self.ident(events.customer), self.ident(events.time)
        return self.ident(self.catalog.relations.transactions), "cust_no", "ts"

    def _test_match(self, test: b.EventCount | b.TxnTest) -> str:
        return self.event_match(test.match) if isinstance(test, b.EventCount) else self.txn_match(test)

    def _measure(self, test: b.EventCount | b.TxnTest, scan: b.Window, time: str, grouped_alone: bool) -> str:
        condition = self._test_match(test)
        if test.window != scan:
            condition = f"{condition} AND {self.time_range(time, *test.window.folded())}"
        counted = "count(*)" if grouped_alone else self.count_if(condition)
        found = [f"{counted} >= {test.at_least}"]
        if isinstance(test, b.TxnTest) and test.sum_at_least is not None:
            total = "sum(amount)" if grouped_alone else self.sum_if("amount", condition)
            found.append(f"{total} >= {self.number(test.sum_at_least)}")
        return " AND ".join(found)

    def aggregate_lines(self, node: b.AggregateScan) -> list[str]:
        relation, customer, time = self._scan_source(node)
        window = node.window or node.tests[0].window
        matches = [self._test_match(test) for test in node.tests]
        where = matches[0] if len(matches) == 1 else "(" + " OR ".join(f"({m})" for m in matches) + ")"
        lines = [f"SELECT {customer} FROM {relation}", f"WHERE {self.time_range(time, *window.folded())} AND {where}"]
        if not _needs_grouping(node, window):
            return lines
        alone = len(node.tests) == 1
        having = f" {'OR' if node.any_of else 'AND'} ".join(
            f"({self._measure(test, window, time, alone)})" if not alone else self._measure(test, window, time, alone)
            for test in node.tests
        )
        return [*lines, f"GROUP BY {customer}", f"HAVING {having}"]

    # -- sequences and absences ---------------------------------------------------------

    def _matching(self, match: b.EventMatch, window: tuple[datetime, datetime]) -> str:
        events = self.catalog.events
        customer, time = self.ident(events.customer), self.ident(events.time)
        return (
            f"SELECT {customer} AS cust_no, {time} AS ts FROM {self.ident(events.relation)} "
            f"WHERE {self.time_range(time, *window)} AND {self.event_match(match)}"
        )

    def sequence_lines(self, node: b.EventSequence) -> list[str]:
        window = node.window.folded()
        chain = f"SELECT cust_no, ts AS t0, ts AS t1 FROM ({self._matching(node.steps[0], window)}) AS s1"
        for i, step in enumerate(node.steps[1:], start=2):
            chain = (
                f"SELECT s.cust_no, s.t0, min(e.ts) AS t{i} FROM ({chain}) AS s "
                f"JOIN ({self._matching(step, window)}) AS e ON e.cust_no = s.cust_no "
                f"WHERE e.ts > s.t{i - 1} AND e.ts <= s.t0 + {self.interval(node.within)} "
                "GROUP BY s.cust_no, s.t0"
            )
        return [f"SELECT cust_no FROM ({chain}) AS chains"]

    def absence_lines(self, node: b.EventAbsence) -> list[str]:
        start, end = node.window.folded()
        firsts = self._matching(node.first, (start, end - node.within))
        followed = (
            f"SELECT a.cust_no, a.ts FROM ({firsts}) AS a "
            f"JOIN ({self._matching(node.then_not, (start, end))}) AS x ON x.cust_no = a.cust_no "
            f"WHERE x.ts > a.ts AND x.ts <= a.ts + {self.interval(node.within)}"
        )
        return [
            "SELECT cust_no FROM (",
            f"  {firsts}",
            f"  {self.except_distinct}",
            f"  {followed}",
            ") AS unanswered",
        ]


def _needs_grouping(node: b.AggregateScan, window: b.Window) -> bool:
    """A plain filter suffices when any one row of any test makes a member."""
    if not node.any_of and len(node.tests) > 1:
        return True
    return any(
        test.at_least > 1 or test.window != window or (isinstance(test, b.TxnTest) and test.sum_at_least is not None)
        for test in node.tests
    )
