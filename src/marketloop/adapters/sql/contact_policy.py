"""`ContactHistory` and `SuppressionLists` on SQL (SQLite embedded, PostgreSQL scale-out).

A decision about a customer first updates the customer's row in
`contact_locks`: on PostgreSQL that locks the row until the transaction ends,
on SQLite the first write takes the database's write lock. Reading the
history, deciding and writing the record then happen under that lock, so two
decisions about one customer never both see a free slot.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from marketloop.adapters.sql.channel_tables import campaign_budgets, contact_history, contact_locks, suppression_entries
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
        return self.decide_many([(customer, since, decide)])[0]

    def decide_many(
        self, items: Sequence[tuple[str, datetime, Callable[[Sequence[ContactRecord]], HistoryUpdate]]]
    ) -> list[ContactRecord]:
        if not items:
            return []
        for attempt in range(3):
            try:
                with self._engine.begin() as connection:
                    return _decide_batch(connection, items)
            except sa.exc.IntegrityError:  # a first decision about a customer raced to create the lock row: retry
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

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

    def find_many(self, pairs: Collection[tuple[str, str]]) -> dict[tuple[str, str], ContactRecord]:
        wanted = set(pairs)
        keys = sorted({key for _, key in wanted})
        found: dict[tuple[str, str], ContactRecord] = {}
        with self._engine.connect() as connection:
            for start in range(0, len(keys), _CHUNK):
                query = (
                    contact_history.select()
                    .where(_H.idempotency_key.in_(keys[start : start + _CHUNK]))
                    .order_by(_H.id)  # the newest last: it wins
                )
                for row in connection.execute(query).mappings():
                    if (row["customer"], row["idempotency_key"]) in wanted:
                        found[(row["customer"], row["idempotency_key"])] = _record(row)
        return found

    def find(self, customer: str, idempotency_key: str) -> ContactRecord | None:
        with self._engine.connect() as connection:
            found = connection.execute(_FIND, {"who": customer, "key": idempotency_key}).mappings().first()
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


# Statements built once with bind parameters: SQLAlchemy then reuses their compiled form on every call.
_H = contact_history.c
_FIND = (
    contact_history.select()
    .where(_H.customer == sa.bindparam("who"), _H.idempotency_key == sa.bindparam("key"))
    .order_by(_H.id.desc())
    .limit(1)
)
_S = suppression_entries.c
_MEMBERSHIPS = (
    suppression_entries.select()
    .where(_S.customer == sa.bindparam("who"), _S.added_at <= sa.bindparam("at"))
    .where(sa.or_(_S.until.is_(None), _S.until > sa.bindparam("at")))
    .order_by(_S.list_name)
)
_LOCK = contact_locks.update().where(contact_locks.c.customer == sa.bindparam("who"))
_LOCK = _LOCK.values(version=contact_locks.c.version + 1)
_CHUNK = 500


def _decide_batch(
    connection: sa.Connection,
    items: Sequence[tuple[str, datetime, Callable[[Sequence[ContactRecord]], HistoryUpdate]]],
) -> list[ContactRecord]:
    """Lock every customer of the batch, read their histories at once, decide in order (a later item sees the
    earlier ones), insert all records in one statement."""
    customers = sorted({customer for customer, _, _ in items})
    _lock_many(connection, customers)
    past = _histories(connection, customers, min(since for _, since, _ in items))
    updates: list[HistoryUpdate] = []
    for customer, since, decide in items:
        update = decide([r for r in past[customer] if r.effective_at >= since])
        updates.append(update)
        revoked = set(update.revoke)
        past[customer] = [replace(r, active=False) if r.id in revoked else r for r in past[customer]]
        past[customer].append(update.record)
    inserted = connection.execute(
        contact_history.insert().returning(contact_history.c.id, sort_by_parameter_order=True),
        [_values(u.record) for u in updates],
    )
    ids = [int(i) for i in inserted.scalars().all()]
    c = contact_history.c
    for update in updates:
        if update.revoke:
            connection.execute(
                contact_history.update()
                .where(c.id.in_(update.revoke), c.customer == update.record.customer)
                .values(active=False, reason=sa.func.substr(c.reason + "; " + update.revoke_reason, 1, 1000))
            )
    return [replace(u.record, id=i) for u, i in zip(updates, ids, strict=True)]


def _lock_many(connection: sa.Connection, customers: list[str]) -> None:
    """Update each customer's lock row first (the write that serialises decisions), then create missing ones."""
    connection.execute(_LOCK, [{"who": customer} for customer in customers])
    locks = contact_locks.c
    existing: set[str] = set()
    for start in range(0, len(customers), _CHUNK):
        chunk = customers[start : start + _CHUNK]
        existing |= set(connection.execute(sa.select(locks.customer).where(locks.customer.in_(chunk))).scalars())
    missing = [{"customer": customer, "version": 1} for customer in customers if customer not in existing]
    if missing:
        connection.execute(contact_locks.insert(), missing)


def _histories(connection: sa.Connection, customers: list[str], since: datetime) -> dict[str, list[ContactRecord]]:
    c = contact_history.c
    found: dict[str, list[ContactRecord]] = {customer: [] for customer in customers}
    for start in range(0, len(customers), _CHUNK):
        query = (
            contact_history.select()
            .where(c.customer.in_(customers[start : start + _CHUNK]), c.effective_at >= canonical_time(since))
            .order_by(c.effective_at, c.id)
        )
        for row in connection.execute(query).mappings():
            found[row["customer"]].append(_record(row))
    return found


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

    def memberships_many(self, customers: Collection[str], at: datetime) -> dict[str, list[ListEntry]]:
        moment, ordered = canonical_time(at), sorted(set(customers))
        found: dict[str, list[ListEntry]] = {}
        with self._engine.connect() as connection:
            for start in range(0, len(ordered), _CHUNK):
                query = (
                    suppression_entries.select()
                    .where(_S.customer.in_(ordered[start : start + _CHUNK]), _S.added_at <= moment)
                    .where(sa.or_(_S.until.is_(None), _S.until > moment))
                    .order_by(_S.customer, _S.list_name)
                )
                for row in connection.execute(query).mappings():
                    found.setdefault(row["customer"], []).append(_entry(row))
        return found

    def memberships(self, customer: str, at: datetime) -> Sequence[ListEntry]:
        moment = canonical_time(at)
        with self._engine.connect() as connection:
            return [_entry(row) for row in connection.execute(_MEMBERSHIPS, {"who": customer, "at": moment}).mappings()]

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


class SqlBudgets:
    """Campaign budgets: one row per campaign, reserved with a conditional UPDATE (atomic on SQLite and PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def reserve(self, campaign: str, amount: int, limit: int) -> bool:
        b = campaign_budgets.c
        take = (
            campaign_budgets.update()
            .where(b.campaign == campaign, b.spent_fen + amount <= limit)
            .values(spent_fen=b.spent_fen + amount)
        )
        for _ in range(2):
            try:
                with self._engine.begin() as connection:
                    if connection.execute(take).rowcount:
                        return True
                    if connection.execute(sa.select(b.campaign).where(b.campaign == campaign)).first() is not None:
                        return False
                    if amount > limit:
                        return False
                    connection.execute(campaign_budgets.insert().values(campaign=campaign, spent_fen=amount))
                    return True
            except sa.exc.IntegrityError:  # another process created the row first: take from it
                continue
        return False

    def release(self, campaign: str, amount: int) -> None:
        b = campaign_budgets.c
        with self._engine.begin() as connection:
            connection.execute(
                campaign_budgets.update().where(b.campaign == campaign).values(spent_fen=b.spent_fen - amount)
            )

    def spent(self, campaign: str) -> int:
        b = campaign_budgets.c
        with self._engine.connect() as connection:
            found = connection.execute(sa.select(b.spent_fen).where(b.campaign == campaign)).scalar()
        return int(found or 0)
