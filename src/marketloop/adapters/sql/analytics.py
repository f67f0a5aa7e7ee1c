"""`AnalyticsRepository` on SQL: saved analyses, alert rules and one check per rule and day."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from marketloop.adapters.sql.tables import metadata
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import as_utc
from marketloop.ports.analytics import RuleCheck, SavedAnalysis, StoredRule

saved_analyses = sa.Table(
    "saved_analyses",
    metadata,
    sa.Column("analysis_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("rule_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
alert_checks = sa.Table(
    "alert_checks",
    metadata,
    sa.Column("rule_id", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("alerted", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("delivered", sa.Boolean, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
)


def _conflict(what: str) -> MarketloopError:
    return MarketloopError(kind=ErrorKind.CONFLICT, code="analytics.exists", title=f"{what} exists already")


class SqlAnalyticsRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def _insert(self, table: sa.Table, row: dict[str, Any], what: str) -> None:
        try:
            with self._engine.begin() as connection:
                connection.execute(table.insert().values(**row))
        except sa.exc.IntegrityError:
            raise _conflict(what) from None

    def save_analysis(self, analysis: SavedAnalysis) -> None:
        row = {
            "analysis_id": analysis.analysis_id,
            "name": analysis.name,
            "spec": orjson.dumps(analysis.spec).decode(),
            "created_at": analysis.created_at,
        }
        self._insert(saved_analyses, row, f"analysis {analysis.analysis_id}")

    def analyses(self) -> list[SavedAnalysis]:
        query = saved_analyses.select().order_by(saved_analyses.c.name, saved_analyses.c.analysis_id)
        return [_analysis(row) for row in self._rows(query)]

    def analysis(self, analysis_id: str) -> SavedAnalysis | None:
        found = self._rows(saved_analyses.select().where(saved_analyses.c.analysis_id == analysis_id))
        return _analysis(found[0]) if found else None

    def replace_analysis(self, analysis: SavedAnalysis) -> bool:
        values = {"name": analysis.name, "spec": orjson.dumps(analysis.spec).decode()}
        table = saved_analyses.c
        with self._engine.begin() as connection:
            found = connection.execute(
                saved_analyses.update().where(table.analysis_id == analysis.analysis_id).values(**values)
            )
        return found.rowcount > 0

    def delete_analysis(self, analysis_id: str) -> bool:
        with self._engine.begin() as connection:
            found = connection.execute(saved_analyses.delete().where(saved_analyses.c.analysis_id == analysis_id))
        return found.rowcount > 0

    def add_rule(self, rule: StoredRule) -> None:
        row = {
            "rule_id": rule.rule_id,
            "name": rule.name,
            "rule": orjson.dumps(rule.rule).decode(),
            "enabled": rule.enabled,
            "created_at": rule.created_at,
        }
        self._insert(alert_rules, row, f"alert rule {rule.rule_id}")

    def rules(self) -> list[StoredRule]:
        return [
            _rule(row) for row in self._rows(alert_rules.select().order_by(alert_rules.c.name, alert_rules.c.rule_id))
        ]

    def replace_rule(self, rule: StoredRule) -> bool:
        values = {"name": rule.name, "rule": orjson.dumps(rule.rule).decode(), "enabled": rule.enabled}
        with self._engine.begin() as connection:
            found = connection.execute(
                alert_rules.update().where(alert_rules.c.rule_id == rule.rule_id).values(**values)
            )
        return found.rowcount > 0

    def delete_rule(self, rule_id: str) -> bool:
        with self._engine.begin() as connection:
            connection.execute(alert_checks.delete().where(alert_checks.c.rule_id == rule_id))
            found = connection.execute(alert_rules.delete().where(alert_rules.c.rule_id == rule_id))
        return found.rowcount > 0

    def record_check(self, check: RuleCheck) -> bool:
        row = {
            "rule_id": check.rule_id,
            "day": check.day,
            "value": check.value,
            "alerted": check.alerted,
            "reason": check.reason,
            "delivered": check.delivered,
            "error": check.error,
            "checked_at": check.checked_at,
        }
        try:
            self._insert(alert_checks, row, "check")
        except MarketloopError:
            return False
        return True

    def checks(self, rule_id: str, *, limit: int) -> list[RuleCheck]:
        query = (
            alert_checks.select()
            .where(alert_checks.c.rule_id == rule_id)
            .order_by(alert_checks.c.day.desc())
            .limit(limit)
        )
        return [_check(row) for row in self._rows(query)]

    def _rows(self, query: sa.Select[Any]) -> list[Any]:
        with self._engine.connect() as connection:
            return list(connection.execute(query).mappings())


def _analysis(row: Any) -> SavedAnalysis:
    return SavedAnalysis(
        analysis_id=row["analysis_id"],
        name=row["name"],
        spec=orjson.loads(row["spec"]),
        created_at=as_utc(row["created_at"]),
    )


def _rule(row: Any) -> StoredRule:
    return StoredRule(
        rule_id=row["rule_id"],
        name=row["name"],
        rule=orjson.loads(row["rule"]),
        enabled=bool(row["enabled"]),
        created_at=as_utc(row["created_at"]),
    )


def _check(row: Any) -> RuleCheck:
    return RuleCheck(
        rule_id=row["rule_id"],
        day=row["day"],
        value=float(row["value"]),
        alerted=bool(row["alerted"]),
        reason=row["reason"],
        delivered=row["delivered"],
        error=row["error"],
        checked_at=as_utc(row["checked_at"]),
    )
