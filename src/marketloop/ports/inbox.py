"""Ports of the two channels that deliver by storing: the in-app inbox (站内信) and RM tasks (客户经理任务)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class InboxMessage:
    id: str
    customer: str
    title: str
    body: str
    link: str
    campaign: str
    created_at: datetime
    read_at: datetime | None = None


class InboxStore(Protocol):
    """Messages the bank's app fetches for a customer."""

    def messages(self, customer: str, *, unread_only: bool = False, limit: int = 50) -> list[InboxMessage]:
        """The customer's messages, newest first."""
        ...

    def mark_read(self, customer: str, message_id: str, at: datetime) -> InboxMessage | None:
        """Mark one of the customer's messages read (idempotent: the first read time stays); None when unknown."""
        ...


class TaskStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, kw_only=True)
class RmTask:
    id: str
    customer: str
    relationship_manager: str
    title: str
    body: str
    campaign: str
    status: TaskStatus
    created_at: datetime
    closed_at: datetime | None = None
    outcome: str = ""
    due_at: datetime | None = None
    priority: str = "normal"  # low / normal / high / urgent


class RmTaskStore(Protocol):
    """Tasks for relationship managers: whom to contact and why."""

    def tasks(
        self, *, relationship_manager: str | None = None, status: TaskStatus | None = None, limit: int = 100
    ) -> list[RmTask]:
        """Tasks, newest first, narrowed by RM and status."""
        ...

    def task(self, task_id: str) -> RmTask | None:
        """One task, or None."""
        ...

    def close(self, task_id: str, outcome: str, at: datetime) -> RmTask | None:
        """Close an open task with its outcome (idempotent for a closed task); None when unknown."""
        ...
