"""`AuditStore` on SQL: entries in `audit_log`, the chain's head in the one-row table `audit_head`.

Sequence numbers come from the head row, which every append updates first:
on PostgreSQL that locks the row until the transaction ends, on SQLite the
first write takes the database's write lock (other writers wait, up to the
engine's busy timeout). Either way two appends never share a `seq` or a
predecessor, across threads and processes. The primary key on `seq` would
refuse a duplicate anyway.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from marketloop.adapters.sql.tables import metadata
from marketloop.core.audit import AuditDraft, AuditEntry, AuditHead, seal
from marketloop.ports.audit import AuditQuery

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False, index=True),
    sa.Column("actor", sa.String(200), nullable=False, index=True),
    sa.Column("action", sa.String(100), nullable=False, index=True),
    sa.Column("target", sa.String(400), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

HEAD_ID = 1


class SqlAuditStore:
    """The audit chain in the operational store (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def append(self, draft: AuditDraft) -> AuditEntry:
        head = audit_head.c
        with self._engine.begin() as connection:
            # Write first: this takes the lock that orders concurrent appends.
            connection.execute(audit_head.update().where(head.id == HEAD_ID).values(seq=head.seq + 1))
            row = connection.execute(sa.select(head.seq, head.hash).where(head.id == HEAD_ID)).one()
            entry = seal(draft, seq=int(row.seq), prev_hash=str(row.hash))
            connection.execute(audit_log.insert().values(**_row(entry)))
            connection.execute(audit_head.update().where(head.id == HEAD_ID).values(hash=entry.hash))
        return entry

    def head(self) -> AuditHead:
        query = sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == HEAD_ID)
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:  # the migration creates it; a missing row means someone deleted it
            return AuditHead(seq=-1, hash="")
        return AuditHead(seq=int(row.seq), hash=str(row.hash))

    def scan(self, *, after_seq: int = 0, limit: int = 10_000) -> list[AuditEntry]:
        query = audit_log.select().where(audit_log.c.seq > after_seq).order_by(audit_log.c.seq).limit(limit)
        with self._engine.connect() as connection:
            return [_entry(row) for row in connection.execute(query).mappings()]

    def hashes(self) -> Iterator[str]:
        with self._engine.connect() as connection:
            for row in connection.execute(sa.select(audit_log.c.hash)).yield_per(10_000):
                yield str(row.hash)

    def search(self, query: AuditQuery) -> list[AuditEntry]:
        c = audit_log.c
        select = audit_log.select().order_by(c.seq.desc()).limit(query.limit)
        if query.since is not None:
            select = select.where(c.at >= query.since)
        if query.actor is not None:
            select = select.where(c.actor == query.actor)
        if query.action is not None:
            exact = c.action == query.action
            select = select.where(
                sa.or_(exact, c.action.startswith(query.action)) if query.action.endswith(".") else exact
            )
        with self._engine.connect() as connection:
            return [_entry(row) for row in connection.execute(select).mappings()]


def _row(entry: AuditEntry) -> dict[str, object]:
    return {
        "seq": entry.seq,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "details": entry.details,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def _entry(row: sa.RowMapping) -> AuditEntry:
    return AuditEntry(
        seq=int(row["seq"]),
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        details=row["details"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )
