"""The in-app inbox (站内信) the app fetches, and RM tasks (客户经理任务) the workbench lists and closes.

Reading a message is its "opened" receipt; closing a task is its "delivered"
receipt: both go through the receipt service to the delivery ledger (fallback
waves and the learned channel preference see them) and come back as the
applied receipts the API publishes as events.
"""

from __future__ import annotations

from dataclasses import dataclass

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.journeys.channels.receipts import AppliedReceipt, ReceiptService
from marketloop.ports.channels import DeliveryStatus, Receipt
from marketloop.ports.clock import Clock
from marketloop.ports.inbox import InboxMessage, InboxStore, RmTask, RmTaskStore, TaskStatus

MAX_LIMIT = 500


@dataclass(frozen=True, kw_only=True)
class Opened:
    message: InboxMessage
    receipts: tuple[AppliedReceipt, ...]  # the "opened" receipt, when this read was the first


@dataclass(frozen=True, kw_only=True)
class Closed:
    task: RmTask
    receipts: tuple[AppliedReceipt, ...]


class InboxService:
    def __init__(self, store: InboxStore, receipts: ReceiptService, clock: Clock, *, channel: str = "inapp") -> None:
        self._store = store
        self._receipts = receipts
        self._clock = clock
        self._channel = channel

    def messages(self, customer: str, *, unread_only: bool = False, limit: int = 50) -> list[InboxMessage]:
        return self._store.messages(_customer(customer), unread_only=unread_only, limit=_limit(limit))

    def read(self, customer: str, message_id: str) -> Opened:
        now = self._clock.now()
        message = self._store.mark_read(_customer(customer), message_id, now)
        if message is None:
            raise MarketloopError(
                kind=ErrorKind.NOT_FOUND, code="inbox.unknown-message", title="No such message for this customer"
            )
        report = self._receipts.apply(
            self._channel, [Receipt(provider_message_id=message_id, status=DeliveryStatus.OPENED, at=now)]
        )
        return Opened(message=message, receipts=report.receipts)


class RmTaskService:
    def __init__(self, store: RmTaskStore, receipts: ReceiptService, clock: Clock, *, channel: str = "rm") -> None:
        self._store = store
        self._receipts = receipts
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

    def close(self, task_id: str, outcome: str) -> Closed:
        if not outcome.strip():
            raise MarketloopError(
                kind=ErrorKind.INVALID, code="rm-task.no-outcome", title="Say what came of the task (outcome)"
            )
        now = self._clock.now()
        task = self._store.close(task_id, outcome.strip(), now)
        if task is None:
            raise MarketloopError(kind=ErrorKind.NOT_FOUND, code="rm-task.unknown", title="No such RM task")
        report = self._receipts.apply(
            self._channel, [Receipt(provider_message_id=task_id, status=DeliveryStatus.DELIVERED, at=now)]
        )
        return Closed(task=task, receipts=report.receipts)


def _customer(customer: str) -> str:
    value = customer.strip()
    if not value or len(value) > 100:
        raise MarketloopError(
            kind=ErrorKind.INVALID, code="inbox.invalid-customer", title="A customer number of 1 to 100 characters"
        )
    return value


def _limit(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))
