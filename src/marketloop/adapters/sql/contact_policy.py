"""`ContactHistory` and `SuppressionLists` on SQL (SQLite embedded, PostgreSQL scale-out).

Each customer has a row in `contact_locks` whose version moves with every
decision about them. A batch of decisions reads the versions, then the
histories, decides outside any write transaction, and writes in a short one
that moves each version by one and checks it moved from what it read: a
decision committed in between (another thread, the dispatcher process) makes
the check fail and the batch is decided again on the new history. So two
decisions about one customer never both see a free slot, and the write lock
(SQLite has one for the whole file) is held for the writes alone, not for the
reads and the policy in between (that had held up the stream processor's and
the journeys' commits for up to 180 ms). After `OPTIMISTIC_TRIES` lost races
the batch is decided under the lock: the version is moved first (on PostgreSQL
that locks the row until the transaction ends, on SQLite the first write takes
the write lock), then the history is read and the record written.
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
        for _ in range(OPTIMISTIC_TRIES):
            decided = _decide_optimistically(self._engine, items)
            if decided is not None:
                return decided
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


_Items = Sequence[tuple[str, datetime, Callable[[Sequence[ContactRecord]], HistoryUpdate]]]
OPTIMISTIC_TRIES = 3


class _MovedError(Exception):
    """A decision about a customer of the batch committed after the batch read their history."""


def _decide_optimistically(engine: sa.Engine, items: _Items) -> list[ContactRecord] | None:
    """Read versions, then histories; decide; write if no version moved meanwhile. None: one did (decide again).

    The versions are read first: a decision committed after that read moves a version, whatever the
    histories show, so the check at the write sees it."""
    customers = sorted({customer for customer, _, _ in items})
    with engine.connect() as connection:
        versions = _versions(connection, customers)
        past = _histories(connection, customers, min(since for _, since, _ in items))
    updates = _decide_in_order(items, past)
    rows = [_values(u.record) for u in updates]
    try:
        with engine.begin() as connection:
            _move_versions(connection, customers, versions)
            return _write(connection, updates, rows)
    except (_MovedError, sa.exc.IntegrityError):  # IntegrityError: another decision created a lock row first
        return None


def _decide_batch(connection: sa.Connection, items: _Items) -> list[ContactRecord]:
    """Lock every customer of the batch, read their histories at once, decide in order (a later item sees the
    earlier ones), insert all records in one statement."""
    customers = sorted({customer for customer, _, _ in items})
    _lock_many(connection, customers)
    past = _histories(connection, customers, min(since for _, since, _ in items))
    updates = _decide_in_order(items, past)
    return _write(connection, updates, [_values(u.record) for u in updates])


def _decide_in_order(items: _Items, past: dict[str, list[ContactRecord]]) -> list[HistoryUpdate]:
    """Each item's decision on its customer's history, a later item seeing the earlier ones."""
    updates: list[HistoryUpdate] = []
    for customer, since, decide in items:
        update = decide([r for r in past[customer] if r.effective_at >= since])
        updates.append(update)
        revoked = set(update.revoke)
        past[customer] = [replace(r, active=False) if r.id in revoked else r for r in past[customer]]
        past[customer].append(update.record)
    return updates


def _versions(connection: sa.Connection, customers: list[str]) -> dict[str, int]:
    locks = contact_locks.c
    found: dict[str, int] = {}
    for start in range(0, len(customers), _CHUNK):
        query = sa.select(locks.customer, locks.version).where(locks.customer.in_(customers[start : start + _CHUNK]))
        found.update((customer, int(version)) for customer, version in connection.execute(query))
    return found


def _move_versions(connection: sa.Connection, customers: list[str], read: dict[str, int]) -> None:
    """Move every customer's version by one (creating the rows of first decisions); `_MovedError` if any had moved
    since `read`."""
    known = [customer for customer in customers if customer in read]
    if known:
        connection.execute(_LOCK, [{"who": customer} for customer in known])
        if _versions(connection, known) != {customer: read[customer] + 1 for customer in known}:
            raise _MovedError
    missing = [{"customer": customer, "version": 1} for customer in customers if customer not in read]
    if missing:
        connection.execute(contact_locks.insert(), missing)  # IntegrityError if another decision made one


def _write(
    connection: sa.Connection, updates: list[HistoryUpdate], rows: list[dict[str, object]]
) -> list[ContactRecord]:
    """Insert the records (in one statement) and deactivate what they revoke."""
    inserted = connection.execute(
        contact_history.insert().returning(contact_history.c.id, sort_by_parameter_order=True), rows
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
    existing = _versions(connection, customers)
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
