"""The channels that deliver by storing a row: the in-app inbox (站内信, fetched by the app through
`GET /v1/inbox/{customer}`) and RM tasks (客户经理任务, listed and closed through `/v1/rm-tasks`).

The row's unique idempotency key makes a repeated send return the first row's
id instead of storing a second row. Reading a message is its "opened" receipt.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from marketloop.adapters.sql.channel_tables import inbox_messages, rm_tasks
from marketloop.core.audit import canonical_time
from marketloop.core.consent import Channel as ChannelKind
from marketloop.ports.channels import ChannelError, Receipt, SendResult, Touch
from marketloop.ports.clock import Clock
from marketloop.ports.inbox import InboxMessage, RmTask, TaskStatus


def _insert_once(engine: sa.Engine, table: sa.Table, key: str, values: dict[str, object]) -> str:
    try:
        with engine.begin() as connection:
            connection.execute(table.insert().values(idempotency_key=key, **values))
        return str(values["id"])
    except sa.exc.IntegrityError:
        with engine.connect() as connection:
            found = connection.execute(sa.select(table.c.id).where(table.c.idempotency_key == key)).scalar()
        if found is None:
            raise
        return str(found)


PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class InboxChannel:
    """In-app messages stored for the app to fetch; also the `InboxStore`."""

    kind = ChannelKind.INAPP

    def __init__(self, *, name: str, engine: sa.Engine, clock: Clock) -> None:
        self._name = name
        self._engine = engine
        self._clock = clock

    @property
    def name(self) -> str:
        return self._name

    def send(self, touch: Touch) -> SendResult:
        values: dict[str, object] = {
            "id": uuid.uuid4().hex,
            "customer": touch.address or touch.customer,
            "title": touch.title[:200],
            "body": touch.body,
            "link": touch.link[:1000],
            "campaign": touch.campaign[:200],
            "created_at": canonical_time(self._clock.now()),
        }
        row_id = _insert_once(self._engine, inbox_messages, touch.idempotency_key, values)
        return SendResult(idempotency_key=touch.idempotency_key, provider_message_id=row_id)

    def parse_receipts(self, payload: bytes) -> Sequence[Receipt]:
        raise ChannelError(
            channel=self._name, message="in-app reads arrive through the inbox API, not callbacks", retryable=False
        )

    def messages(self, customer: str, *, unread_only: bool = False, limit: int = 50) -> list[InboxMessage]:
        m = inbox_messages.c
        query = inbox_messages.select().where(m.customer == customer).order_by(m.created_at.desc()).limit(limit)
        if unread_only:
            query = query.where(m.read_at.is_(None))
        with self._engine.connect() as connection:
            return [_message(row) for row in connection.execute(query).mappings()]

    def mark_read(self, customer: str, message_id: str, at: datetime) -> InboxMessage | None:
        m = inbox_messages.c
        mine = sa.and_(m.id == message_id, m.customer == customer)
        with self._engine.begin() as connection:
            connection.execute(
                inbox_messages.update().where(mine, m.read_at.is_(None)).values(read_at=canonical_time(at))
            )
            row = connection.execute(inbox_messages.select().where(mine)).mappings().first()
        return _message(row) if row is not None else None


def _message(row: sa.RowMapping) -> InboxMessage:
    return InboxMessage(
        id=row["id"],
        customer=row["customer"],
        title=row["title"],
        body=row["body"],
        link=row["link"],
        campaign=row["campaign"],
        created_at=datetime.fromisoformat(row["created_at"]),
        read_at=_time(row["read_at"]),
    )


class RmTaskChannel:
    """RM tasks as a channel (the touch's `sender` is the RM, else the default queue); also the `RmTaskStore`."""

    kind = ChannelKind.RM

    def __init__(self, *, name: str, engine: sa.Engine, clock: Clock, default_queue: str = "unassigned") -> None:
        self._name = name
        self._engine = engine
        self._clock = clock
        self._queue = default_queue

    @property
    def name(self) -> str:
        return self._name

    def send(self, touch: Touch) -> SendResult:
        values: dict[str, object] = {
            "id": uuid.uuid4().hex,
            "customer": touch.customer,
            "relationship_manager": (touch.sender or self._queue)[:100],
            "title": (touch.title or touch.body[:40])[:200],
            "body": touch.body,
            "campaign": touch.campaign[:200],
            "status": TaskStatus.OPEN.value,
            "created_at": canonical_time(self._clock.now()),
            "outcome": "",
            "due_at": canonical_time(touch.due_at) if touch.due_at is not None else None,
            "priority": touch.urgency or "normal",
        }
        row_id = _insert_once(self._engine, rm_tasks, touch.idempotency_key, values)
        return SendResult(idempotency_key=touch.idempotency_key, provider_message_id=row_id)

    def parse_receipts(self, payload: bytes) -> Sequence[Receipt]:
        raise ChannelError(
            channel=self._name, message="RM task outcomes arrive through /v1/rm-tasks, not callbacks", retryable=False
        )

    def tasks(
        self, *, relationship_manager: str | None = None, status: TaskStatus | None = None, limit: int = 100
    ) -> list[RmTask]:
        t = rm_tasks.c
        # most pressing first: the earliest due (tasks without a due time after), then by priority, the newest
        rank = sa.case(PRIORITY_RANK, value=t.priority, else_=len(PRIORITY_RANK))
        query = rm_tasks.select().order_by(t.due_at.is_(None), t.due_at, rank, t.created_at.desc(), t.id).limit(limit)
        if relationship_manager is not None:
            query = query.where(t.relationship_manager == relationship_manager)
        if status is not None:
            query = query.where(t.status == status.value)
        with self._engine.connect() as connection:
            return [_task(row) for row in connection.execute(query).mappings()]

    def task(self, task_id: str) -> RmTask | None:
        with self._engine.connect() as connection:
            row = connection.execute(rm_tasks.select().where(rm_tasks.c.id == task_id)).mappings().first()
        return _task(row) if row is not None else None

    def close(self, task_id: str, outcome: str, at: datetime) -> RmTask | None:
        t = rm_tasks.c
        with self._engine.begin() as connection:
            connection.execute(
                rm_tasks.update()
                .where(t.id == task_id, t.status == TaskStatus.OPEN.value)
                .values(status=TaskStatus.CLOSED.value, closed_at=canonical_time(at), outcome=outcome[:500])
            )
            row = connection.execute(rm_tasks.select().where(t.id == task_id)).mappings().first()
        return _task(row) if row is not None else None


def _task(row: sa.RowMapping) -> RmTask:
    return RmTask(
        id=row["id"],
        customer=row["customer"],
        relationship_manager=row["relationship_manager"],
        title=row["title"],
        body=row["body"],
        campaign=row["campaign"],
        status=TaskStatus(row["status"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        closed_at=_time(row["closed_at"]),
        outcome=row["outcome"],
        due_at=_time(row["due_at"]),
        priority=row["priority"],
    )
