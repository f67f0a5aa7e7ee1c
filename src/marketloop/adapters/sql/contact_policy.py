"""`ContactHistory` and `SuppressionLists` on SQL (SQLite embedded, PostgreSQL scale-out).

A decision about a customer first updates the customer's row in
`contact_locks`: on PostgreSQL that locks the row until the transaction ends,
on SQLite the first write takes the database's write lock. Reading the
history, deciding and writing the record then happen under that lock, so two
decisions about one customer never both see a free slot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from marketloop.adapters.sql.channel_tables import contact_history, contact_locks, suppression_entries
from marketloop.core.audit import canonical_time
from marketloop.core.consent import Channel, Purpose
from marketloop.ports.contact_policy import ContactRecord, HistoryUpdate, ListEntry, Outcome


class SqlContactHistory:
    """Contact history in the operational store."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def decide(
        self, customer: str, since: datetime, decide: Callable[[Sequence[ContactRecord]], HistoryUpdate]
    ) -> ContactRecord:
        for attempt in range(3):
            try:
                return self._decide_once(customer, since, decide)
            except sa.exc.IntegrityError:  # two first decisions raced to create the lock row; the loser retries
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def decide_many(
        self, items: Sequence[tuple[str, datetime, Callable[[Sequence[ContactRecord]], HistoryUpdate]]]
    ) -> list[ContactRecord]:
        for attempt in range(3):
            try:
                with self._engine.begin() as connection:
                    return [self._decide_in(connection, customer, since, decide) for customer, since, decide in items]
            except sa.exc.IntegrityError:  # a first decision about a customer raced to create the lock row: retry
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _decide_once(
        self, customer: str, since: datetime, decide: Callable[[Sequence[ContactRecord]], HistoryUpdate]
    ) -> ContactRecord:
        with self._engine.begin() as connection:
            return self._decide_in(connection, customer, since, decide)

    def _decide_in(
        self,
        connection: sa.Connection,
        customer: str,
        since: datetime,
        decide: Callable[[Sequence[ContactRecord]], HistoryUpdate],
    ) -> ContactRecord:
        c = contact_history.c
        _lock(connection, customer)
        query = (
            contact_history.select()
            .where(c.customer == customer, c.effective_at >= canonical_time(since))
            .order_by(c.effective_at, c.id)
        )
        past = [_record(row) for row in connection.execute(query).mappings()]
        update = decide(past)
        key = connection.execute(contact_history.insert().values(**_values(update.record))).inserted_primary_key
        if update.revoke:
            connection.execute(
                contact_history.update()
                .where(c.id.in_(update.revoke), c.customer == customer)
                .values(active=False, reason=sa.func.substr(c.reason + "; " + update.revoke_reason, 1, 1000))
            )
        return replace(update.record, id=int(key[0]) if key else None)

    def deactivate(self, record_id: int, reason: str) -> None:
        c = contact_history.c
        with self._engine.begin() as connection:
            connection.execute(
                contact_history.update()
                .where(c.id == record_id)
                .values(active=False, reason=sa.func.substr(c.reason + "; " + reason, 1, 1000))
            )

    def get(self, record_id: int) -> ContactRecord | None:
        with self._engine.connect() as connection:
            row = connection.execute(contact_history.select().where(contact_history.c.id == record_id)).mappings()
            found = row.first()
        return _record(found) if found is not None else None

    def find(self, customer: str, idempotency_key: str) -> ContactRecord | None:
        c = contact_history.c
        query = (
            contact_history.select()
            .where(c.customer == customer, c.idempotency_key == idempotency_key)
            .order_by(c.id.desc())
            .limit(1)
        )
        with self._engine.connect() as connection:
            found = connection.execute(query).mappings().first()
        return _record(found) if found is not None else None

    def history(self, customer: str, *, limit: int = 100) -> list[ContactRecord]:
        c = contact_history.c
        query = contact_history.select().where(c.customer == customer).order_by(c.id.desc()).limit(limit)
        with self._engine.connect() as connection:
            return [_record(row) for row in connection.execute(query).mappings()]

    def summary(self, campaign: str, since: datetime | None = None) -> Mapping[str, int]:
        c = contact_history.c
        query = sa.select(c.code, sa.func.count()).where(c.campaign == campaign).group_by(c.code)
        if since is not None:
            query = query.where(c.decided_at >= canonical_time(since))
        with self._engine.connect() as connection:
            return {str(code): int(n) for code, n in connection.execute(query)}


def _lock(connection: sa.Connection, customer: str) -> None:
    locks = contact_locks.c
    updated = connection.execute(
        contact_locks.update().where(locks.customer == customer).values(version=locks.version + 1)
    )
    if updated.rowcount == 0:
        connection.execute(contact_locks.insert().values(customer=customer, version=1))


def _values(record: ContactRecord) -> dict[str, object]:
    return {
        "customer": record.customer,
        "channel": record.channel.value,
        "purpose": record.purpose.value,
        "campaign": record.campaign[:200],
        "priority": record.priority,
        "outcome": record.outcome.value,
        "code": record.code,
        "reason": record.reason[:1000],
        "decided_at": canonical_time(record.decided_at),
        "effective_at": canonical_time(record.effective_at),
        "idempotency_key": record.idempotency_key[:200],
        "active": record.active,
    }


def _record(row: sa.RowMapping) -> ContactRecord:
    return ContactRecord(
        id=int(row["id"]),
        customer=row["customer"],
        channel=Channel(row["channel"]),
        purpose=Purpose(row["purpose"]),
        campaign=row["campaign"],
        priority=int(row["priority"]),
        outcome=Outcome(row["outcome"]),
        code=row["code"],
        reason=row["reason"],
        decided_at=datetime.fromisoformat(row["decided_at"]),
        effective_at=datetime.fromisoformat(row["effective_at"]),
        idempotency_key=row["idempotency_key"],
        active=bool(row["active"]),
    )


class SqlSuppressionLists:
    """Suppression lists (免打扰 / 全局对照组 …) in the operational store."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def add(self, entry: ListEntry) -> None:
        s = suppression_entries.c
        with self._engine.begin() as connection:
            connection.execute(
                suppression_entries.delete().where(s.list_name == entry.list_name, s.customer == entry.customer)
            )
            connection.execute(
                suppression_entries.insert().values(
                    list_name=entry.list_name,
                    customer=entry.customer,
                    reason=entry.reason[:500],
                    added_at=canonical_time(entry.added_at),
                    until=canonical_time(entry.until) if entry.until else None,
                )
            )

    def remove(self, list_name: str, customer: str) -> bool:
        s = suppression_entries.c
        with self._engine.begin() as connection:
            deleted = connection.execute(
                suppression_entries.delete().where(s.list_name == list_name, s.customer == customer)
            )
        return deleted.rowcount > 0

    def memberships(self, customer: str, at: datetime) -> Sequence[ListEntry]:
        s = suppression_entries.c
        moment = canonical_time(at)
        query = (
            suppression_entries.select()
            .where(s.customer == customer, s.added_at <= moment)
            .where(sa.or_(s.until.is_(None), s.until > moment))
            .order_by(s.list_name)
        )
        with self._engine.connect() as connection:
            return [_entry(row) for row in connection.execute(query).mappings()]

    def entries(self, list_name: str, *, limit: int = 1000) -> list[ListEntry]:
        s = suppression_entries.c
        query = suppression_entries.select().where(s.list_name == list_name).order_by(s.customer).limit(limit)
        with self._engine.connect() as connection:
            return [_entry(row) for row in connection.execute(query).mappings()]


def _entry(row: sa.RowMapping) -> ListEntry:
    return ListEntry(
        list_name=row["list_name"],
        customer=row["customer"],
        reason=row["reason"],
        added_at=datetime.fromisoformat(row["added_at"]),
        until=datetime.fromisoformat(row["until"]) if row["until"] else None,
    )
