"""`ApprovalStore` on SQL: maker-checker requests in `approvals`; decisions and uses are compare-and-set updates."""

from __future__ import annotations

from datetime import datetime

import orjson
import sqlalchemy as sa

from marketloop.adapters.sql.tables import metadata
from marketloop.core.events import as_utc
from marketloop.ports.access import Approval

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("target", sa.String(400), nullable=False, index=True),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("decided_by", sa.String(200), nullable=True),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("decision_note", sa.Text, nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
)


class SqlApprovalStore:
    """Approval requests in the operational store."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def add(self, approval: Approval) -> None:
        row = {
            "id": approval.id,
            "action": approval.action,
            "target": approval.target,
            "details": orjson.dumps(approval.details).decode(),
            "reason": approval.reason,
            "requested_by": approval.requested_by,
            "requested_at": approval.requested_at,
            "status": approval.status,
            "decided_by": approval.decided_by,
            "decided_at": approval.decided_at,
            "decision_note": approval.decision_note,
            "expires_at": approval.expires_at,
            "used_at": approval.used_at,
        }
        with self._engine.begin() as connection:
            connection.execute(approvals.insert().values(**row))

    def get(self, approval_id: str) -> Approval | None:
        with self._engine.connect() as connection:
            row = connection.execute(approvals.select().where(approvals.c.id == approval_id)).mappings().first()
        return _approval(row) if row is not None else None

    def search(self, *, status: str | None, requested_by: str | None, limit: int) -> list[Approval]:
        c = approvals.c
        query = approvals.select().order_by(c.requested_at.desc(), c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(c.status == status)
        if requested_by is not None:
            query = query.where(c.requested_by == requested_by)
        with self._engine.connect() as connection:
            return [_approval(row) for row in connection.execute(query).mappings()]

    def decide(self, approval_id: str, *, status: str, by: str, at: datetime, note: str) -> bool:
        c = approvals.c
        update = (
            approvals.update()
            .where(c.id == approval_id, c.status == "pending")
            .values(status=status, decided_by=by, decided_at=at, decision_note=note)
        )
        with self._engine.begin() as connection:
            return connection.execute(update).rowcount == 1

    def use(self, approval_id: str, at: datetime) -> bool:
        c = approvals.c
        update = approvals.update().where(c.id == approval_id, c.status == "approved").values(status="used", used_at=at)
        with self._engine.begin() as connection:
            return connection.execute(update).rowcount == 1


def _time(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def _approval(row: sa.RowMapping) -> Approval:
    return Approval(
        id=row["id"],
        action=row["action"],
        target=row["target"],
        details=orjson.loads(row["details"]),
        reason=row["reason"],
        requested_by=row["requested_by"],
        requested_at=as_utc(row["requested_at"]),
        status=row["status"],
        decided_by=row["decided_by"],
        decided_at=_time(row["decided_at"]),
        decision_note=row["decision_note"],
        expires_at=as_utc(row["expires_at"]),
        used_at=_time(row["used_at"]),
    )
