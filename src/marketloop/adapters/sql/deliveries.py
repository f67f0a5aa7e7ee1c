"""`DeliveryLedger` on SQL: one row per idempotency key in `channel_deliveries`.

A claim is one conditional UPDATE (a RETRYING key, or a PENDING one whose
worker died) or one INSERT guarded by the primary key, so two workers never
both hold the same key.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import sqlalchemy as sa

from marketloop.adapters.sql.channel_tables import channel_deliveries
from marketloop.core.audit import canonical_time
from marketloop.core.consent import Channel as ChannelKind
from marketloop.ports.channels import ENGAGED, STATUS_RANK, Delivery, DeliveryStatus, SendResult

_SENT = [s.value for s, rank in STATUS_RANK.items() if rank >= STATUS_RANK[DeliveryStatus.ACCEPTED]]
_SENT = [s for s in _SENT if s not in (DeliveryStatus.FAILED.value, DeliveryStatus.DEAD.value)]


class SqlDeliveryLedger:
    """The delivery ledger in the operational store."""

    def __init__(self, engine: sa.Engine, *, stale_after: timedelta = timedelta(minutes=10)) -> None:
        self._engine = engine
        self._stale_after = stale_after

    def claim(
        self, *, key: str, channel: str, kind: ChannelKind, customer: str, campaign: str, at: datetime
    ) -> Delivery | None:
        d = channel_deliveries.c
        now = canonical_time(at)
        stale = canonical_time(at - self._stale_after)
        reclaim = (
            channel_deliveries.update()
            .where(d.idempotency_key == key)
            .where(
                sa.or_(
                    d.status == DeliveryStatus.RETRYING.value,
                    sa.and_(d.status == DeliveryStatus.PENDING.value, d.updated_at < stale),
                )
            )
            .values(status=DeliveryStatus.PENDING.value, attempts=d.attempts + 1, updated_at=now, retry_at=None)
        )
        try:
            with self._engine.begin() as connection:
                if connection.execute(reclaim).rowcount == 0:
                    connection.execute(
                        channel_deliveries.insert().values(
                            idempotency_key=key,
                            channel=channel,
                            kind=kind.value,
                            customer=customer,
                            campaign=campaign[:200],
                            status=DeliveryStatus.PENDING.value,
                            attempts=1,
                            provider_message_id="",
                            error="",
                            parts=0,
                            created_at=now,
                            updated_at=now,
                        )
                    )
        except sa.exc.IntegrityError:
            return None  # the key exists and is not claimable: sent, failed, dead or being sent
        return self.get(key)

    def complete(self, key: str, result: SendResult, at: datetime) -> None:
        self._set(
            key,
            status=result.status.value,
            provider_message_id=result.provider_message_id[:200],
            parts=result.parts,
            error="",
            updated_at=canonical_time(at),
        )

    def fail(self, key: str, error: str, status: DeliveryStatus, at: datetime, retry_at: datetime | None) -> None:
        self._set(
            key,
            status=status.value,
            error=error[:500],
            updated_at=canonical_time(at),
            retry_at=canonical_time(retry_at) if retry_at else None,
        )

    def _set(self, key: str, **values: object) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                channel_deliveries.update().where(channel_deliveries.c.idempotency_key == key).values(**values)
            )

    def get(self, key: str) -> Delivery | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                channel_deliveries.select().where(channel_deliveries.c.idempotency_key == key)
            ).mappings()
            found = row.first()
        return _delivery(found) if found is not None else None

    def by_provider_id(self, channel: str, provider_message_id: str) -> Delivery | None:
        d = channel_deliveries.c
        query = channel_deliveries.select().where(d.channel == channel, d.provider_message_id == provider_message_id)
        with self._engine.connect() as connection:
            found = connection.execute(query.limit(1)).mappings().first()
        return _delivery(found) if found is not None else None

    def advance(self, key: str, status: DeliveryStatus, at: datetime) -> bool:
        d = channel_deliveries.c
        behind = [s.value for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]
        with self._engine.begin() as connection:
            updated = connection.execute(
                channel_deliveries.update()
                .where(d.idempotency_key == key, d.status.in_(behind))
                .values(status=status.value, updated_at=canonical_time(at))
            )
        return updated.rowcount > 0

    def engagement(self, customer: str) -> Mapping[ChannelKind, tuple[int, int]]:
        d = channel_deliveries.c
        engaged = sa.func.sum(sa.case((d.status.in_([s.value for s in ENGAGED]), 1), else_=0))
        query = (
            sa.select(d.kind, sa.func.count(), engaged)
            .where(d.customer == customer, d.status.in_(_SENT))
            .group_by(d.kind)
        )
        with self._engine.connect() as connection:
            return {
                ChannelKind(kind): (int(sent), int(opened or 0)) for kind, sent, opened in connection.execute(query)
            }

    def list(self, *, status: DeliveryStatus | None = None, limit: int = 100) -> list[Delivery]:
        d = channel_deliveries.c
        query = channel_deliveries.select().order_by(d.updated_at.desc()).limit(limit)
        if status is not None:
            query = query.where(d.status == status.value)
        with self._engine.connect() as connection:
            return [_delivery(row) for row in connection.execute(query).mappings()]


def _delivery(row: sa.RowMapping) -> Delivery:
    return Delivery(
        idempotency_key=row["idempotency_key"],
        channel=row["channel"],
        kind=ChannelKind(row["kind"]),
        customer=row["customer"],
        campaign=row["campaign"],
        status=DeliveryStatus(row["status"]),
        attempts=int(row["attempts"]),
        provider_message_id=row["provider_message_id"],
        error=row["error"],
        parts=int(row["parts"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        retry_at=datetime.fromisoformat(row["retry_at"]) if row["retry_at"] else None,
    )
