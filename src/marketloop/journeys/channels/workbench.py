"""The in-app inbox (站内信) the app fetches, and RM tasks (客户经理任务) the workbench lists and closes.

Reading a message is its "opened" receipt; closing a task is its "delivered"
receipt: both go to the delivery ledger, so fallback waves and the learned
channel preference see them.
"""

from __future__ import annotations

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.channels import DeliveryLedger, DeliveryStatus
from marketloop.ports.clock import Clock
from marketloop.ports.inbox import InboxMessage, InboxStore, RmTask, RmTaskStore, TaskStatus

MAX_LIMIT = 500


class InboxService:
    def __init__(self, store: InboxStore, ledger: DeliveryLedger, clock: Clock, *, channel: str = "inapp") -> None:
        self._store = store
        self._ledger = ledger
        self._clock = clock
        self._channel = channel

    def messages(self, customer: str, *, unread_only: bool = False, limit: int = 50) -> list[InboxMessage]:
        return self._store.messages(_customer(customer), unread_only=unread_only, limit=_limit(limit))

    def read(self, customer: str, message_id: str) -> InboxMessage:
        now = self._clock.now()
        message = self._store.mark_read(_customer(customer), message_id, now)
        if message is None:
            raise MarketloopError(
                kind=ErrorKind.NOT_FOUND, code="inbox.unknown-message", title="No such message for this customer"
            )
        delivery = self._ledger.by_provider_id(self._channel, message_id)
        if delivery is not None:
            self._ledger.advance(delivery.idempotency_key, DeliveryStatus.OPENED, now)
        return message


class RmTaskService:
    def __init__(self, store: RmTaskStore, ledger: DeliveryLedger, clock: Clock, *, channel: str = "rm") -> None:
        self._store = store
        self._ledger = ledger
        self._clock = clock
        self._channel = channel

    def tasks(
        self, *, relationship_manager: str | None = None, status: TaskStatus | None = None, limit: int = 100
    ) -> list[RmTask]:
        return self._store.tasks(relationship_manager=relationship_manager, status=status, limit=_limit(limit))

    def task(self, task_id: str) -> RmTask:
        found = self._store.task(task_id)
        if found is None:
            raise MarketloopError(kind=ErrorKind.NOT_FOUND, code="rm-task.unknown", title="No such RM task")
        return found

    def close(self, task_id: str, outcome: str) -> RmTask:
        if not outcome.strip():
            raise MarketloopError(
                kind=ErrorKind.INVALID, code="rm-task.no-outcome", title="Say what came of the task (outcome)"
            )
        now = self._clock.now()
        task = self._store.close(task_id, outcome.strip(), now)
        if task is None:
            raise MarketloopError(kind=ErrorKind.NOT_FOUND, code="rm-task.unknown", title="No such RM task")
        delivery = self._ledger.by_provider_id(self._channel, task_id)
        if delivery is not None:
            self._ledger.advance(delivery.idempotency_key, DeliveryStatus.DELIVERED, now)
        return task


def _customer(customer: str) -> str:
    value = customer.strip()
    if not value or len(value) > 100:
        raise MarketloopError(
            kind=ErrorKind.INVALID, code="inbox.invalid-customer", title="A customer number of 1 to 100 characters"
        )
    return value


def _limit(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))
