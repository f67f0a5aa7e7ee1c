"""`ConsentStore` on SQL: one row per consent record in `consent_records`, never updated.

Times are stored as canonical UTC ISO strings (as in the audit log), so they
compare and sort the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from marketloop.adapters.sql.tables import metadata
from marketloop.core.audit import canonical_time
from marketloop.core.consent import Channel, ConsentRecord, ConsentStatus, Purpose

consent_records = sa.Table(
    "consent_records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer", sa.String(100), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("purpose", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("recorded_at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Index("ix_consent_records_lookup", "customer", "channel", "purpose", "at"),
)


class SqlConsentStore:
    """Consent records in the operational store."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def add(self, record: ConsentRecord) -> ConsentRecord:
        values = {
            "customer": record.customer,
            "channel": record.channel.value,
            "purpose": record.purpose.value,
            "status": record.status.value,
            "source": record.source,
            "at": canonical_time(record.at),
            "recorded_at": canonical_time(record.recorded_at or record.at),
            "actor": record.actor,
        }
        with self._engine.begin() as connection:
            key = connection.execute(consent_records.insert().values(**values)).inserted_primary_key
        return replace(record, id=int(key[0]) if key else None)

    def latest_many(
        self, keys: Collection[tuple[str, Channel, Purpose]], at: datetime
    ) -> dict[tuple[str, Channel, Purpose], ConsentRecord]:
        c = consent_records.c
        wanted = set(keys)
        customers = sorted({customer for customer, _, _ in wanted})
        found: dict[tuple[str, Channel, Purpose], ConsentRecord] = {}
        with self._engine.connect() as connection:
            for start in range(0, len(customers), 500):
                query = (
                    consent_records.select()
                    .where(c.customer.in_(customers[start : start + 500]), c.at <= canonical_time(at))
                    .order_by(c.at, c.id)  # the newest last: it wins
                )
                for row in connection.execute(query).mappings():
                    record = _record(row)
                    key = (record.customer, record.channel, record.purpose)
                    if key in wanted:
                        found[key] = record
        return found

    def latest(self, customer: str, channel: Channel, purpose: Purpose, at: datetime) -> ConsentRecord | None:
        c = consent_records.c
        query = (
            consent_records.select()
            .where(c.customer == customer, c.channel == channel.value, c.purpose == purpose.value)
            .where(c.at <= canonical_time(at))
            .order_by(c.at.desc(), c.id.desc())
            .limit(1)
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return _record(row) if row is not None else None

    def history(self, customer: str) -> list[ConsentRecord]:
        c = consent_records.c
        query = consent_records.select().where(c.customer == customer).order_by(c.at, c.id)
        with self._engine.connect() as connection:
            return [_record(row) for row in connection.execute(query).mappings()]


def _record(row: sa.RowMapping) -> ConsentRecord:
    return ConsentRecord(
        id=int(row["id"]),
        customer=row["customer"],
        channel=Channel(row["channel"]),
        purpose=Purpose(row["purpose"]),
        status=ConsentStatus(row["status"]),
        source=row["source"],
        at=datetime.fromisoformat(row["at"]),
        recorded_at=datetime.fromisoformat(row["recorded_at"]),
        actor=row["actor"],
    )
