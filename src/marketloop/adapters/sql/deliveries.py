"""`DeliveryLedger` on SQL: one row per idempotency key in `channel_deliveries`.

A claim is one conditional UPDATE (a RETRYING key, or a PENDING one whose
worker died) or one INSERT guarded by the primary key, so two workers never
both hold the same key. `claim_many` and `complete_many` do a whole batch in
one transaction (one fsync instead of one per touch); while a batch-claimed row is pending, `error` holds the
batch's claim token, which is how the batch tells the rows it took from rows others hold.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from marketloop.adapters.sql.channel_tables import channel_deliveries
from marketloop.core.audit import canonical_time
from marketloop.core.consent import Channel as ChannelKind
from marketloop.ports.channels import ENGAGED, STATUS_RANK, Claim, Delivery, DeliveryStatus, SendResult

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
        claim = Claim(key=key, channel=channel, kind=kind, customer=customer, campaign=campaign)
        return self.get(key) if self._claim_one(claim, at) else None

    def _reclaim(self, key: str, at: datetime) -> sa.Update:
        """Take a RETRYING key, or a PENDING one whose claim is stale (its worker died)."""
        d = channel_deliveries.c
        stale = canonical_time(at - self._stale_after)
        return (
            channel_deliveries.update()
            .where(d.idempotency_key == key)
            .where(
                sa.or_(
                    d.status == DeliveryStatus.RETRYING.value,
                    sa.and_(d.status == DeliveryStatus.PENDING.value, d.updated_at < stale),
                )
            )
            .values(
                status=DeliveryStatus.PENDING.value,
                attempts=d.attempts + 1,
                updated_at=canonical_time(at),
                retry_at=None,
            )
        )

    def claim_many(self, claims: Sequence[Claim], at: datetime) -> list[Delivery | None]:
        if not claims:
            return []
        token = f"claim:{uuid.uuid4().hex}"  # marks the rows this batch took, until complete / fail overwrite it
        try:
            with self._engine.begin() as connection:
                self._claim_batch(connection, claims, at, token)
            mine = {k: d for k, d in self.get_many([c.key for c in claims]).items() if d.error == token}
        except sa.exc.IntegrityError:  # another worker inserted one of the keys meanwhile: claim one by one
            taken = {c.key for c in claims if self._claim_one(c, at)}
            mine = {k: d for k, d in self.get_many(sorted(taken)).items()}
        return [mine.get(c.key) for c in claims]

    def _claim_batch(self, connection: sa.Connection, claims: Sequence[Claim], at: datetime, token: str) -> None:
        """Reclaim what may be reclaimed (the first statement is a write: it takes the lock on SQLite), then insert
        the keys that have no row; both stamp `token`."""
        d = channel_deliveries.c
        now, stale = canonical_time(at), canonical_time(at - self._stale_after)
        connection.execute(_RECLAIM, [{"k": c.key, "stale": stale, "now": now, "token": token} for c in claims])
        keys = [c.key for c in claims]
        existing: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            existing |= set(
                connection.execute(sa.select(d.idempotency_key).where(d.idempotency_key.in_(chunk))).scalars()
            )
        new = [_new_row(c, now, token) for c in claims if c.key not in existing]
        if new:
            connection.execute(channel_deliveries.insert(), new)

    def _claim_one(self, claim: Claim, at: datetime) -> bool:
        try:
            with self._engine.begin() as connection:
                return self._claim_in(connection, claim, at)
        except sa.exc.IntegrityError:
            return False

    def _claim_in(self, connection: sa.Connection, claim: Claim, at: datetime) -> bool:
        d = channel_deliveries.c
        now = canonical_time(at)
        if connection.execute(self._reclaim(claim.key, at)).rowcount:
            return True
        if connection.execute(sa.select(d.status).where(d.idempotency_key == claim.key)).first() is not None:
            return False
        connection.execute(
            channel_deliveries.insert().values(
                idempotency_key=claim.key,
                channel=claim.channel,
                kind=claim.kind.value,
                customer=claim.customer,
                campaign=claim.campaign[:200],
                status=DeliveryStatus.PENDING.value,
                attempts=1,
                provider_message_id="",
                error="",
                parts=0,
                created_at=now,
                updated_at=now,
            )
        )
        return True

    def complete_many(self, results: Sequence[SendResult], at: datetime) -> None:
        if not results:
            return
        when = canonical_time(at)
        params = [
            {
                "k": r.idempotency_key,
                "st": r.status.value,
                "pid": r.provider_message_id[:200],
                "parts": r.parts,
                "now": when,
            }
            for r in results
        ]
        with self._engine.begin() as connection:
            connection.execute(_COMPLETE, params)

    def get_many(self, keys: Sequence[str]) -> Mapping[str, Delivery]:
        d = channel_deliveries.c
        found: dict[str, Delivery] = {}
        with self._engine.connect() as connection:
            for start in range(0, len(keys), 500):
                query = channel_deliveries.select().where(d.idempotency_key.in_(list(keys[start : start + 500])))
                found |= {
                    row["idempotency_key"]: _delivery(row, self._stale_after)
                    for row in connection.execute(query).mappings()
                }
        return found

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
        return _delivery(found, self._stale_after) if found is not None else None

    def by_provider_id(self, channel: str, provider_message_id: str) -> Delivery | None:
        d = channel_deliveries.c
        query = channel_deliveries.select().where(d.channel == channel, d.provider_message_id == provider_message_id)
        with self._engine.connect() as connection:
            found = connection.execute(query.limit(1)).mappings().first()
        return _delivery(found, self._stale_after) if found is not None else None

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
            return [_delivery(row, self._stale_after) for row in connection.execute(query).mappings()]


_D = channel_deliveries.c
_RECLAIM = (
    channel_deliveries.update()
    .where(_D.idempotency_key == sa.bindparam("k"))
    .where(
        sa.or_(
            _D.status == DeliveryStatus.RETRYING.value,
            sa.and_(_D.status == DeliveryStatus.PENDING.value, _D.updated_at < sa.bindparam("stale")),
        )
    )
    .values(
        status=DeliveryStatus.PENDING.value,
        attempts=_D.attempts + 1,
        updated_at=sa.bindparam("now"),
        retry_at=None,
        error=sa.bindparam("token"),
    )
)


_COMPLETE = (
    channel_deliveries.update()
    .where(_D.idempotency_key == sa.bindparam("k"))
    .values(
        status=sa.bindparam("st"),
        provider_message_id=sa.bindparam("pid"),
        parts=sa.bindparam("parts"),
        error="",
        updated_at=sa.bindparam("now"),
    )
)


def _new_row(claim: Claim, now: str, token: str) -> dict[str, object]:
    return {
        "idempotency_key": claim.key,
        "channel": claim.channel,
        "kind": claim.kind.value,
        "customer": claim.customer,
        "campaign": claim.campaign[:200],
        "status": DeliveryStatus.PENDING.value,
        "attempts": 1,
        "provider_message_id": "",
        "error": token,
        "parts": 0,
        "created_at": now,
        "updated_at": now,
    }


def _delivery(row: sa.RowMapping, stale_after: timedelta) -> Delivery:
    """The row; a PENDING one's `retry_at` is when its claim lapses (see `Delivery.retry_at`)."""
    updated_at = datetime.fromisoformat(row["updated_at"])
    pending = row["status"] == DeliveryStatus.PENDING.value
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
        updated_at=updated_at,
        retry_at=updated_at + stale_after if pending else _time(row["retry_at"]),
    )


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
