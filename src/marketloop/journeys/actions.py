"""Journey steps that act on the bank's systems rather than message the customer: update a tag, an RM task, a webhook.

An `update` step queues a `TagUpdate` in the outbox under its own key, like a
touch, with the outbox channel `UPDATE`: the dispatcher performs it through
the `TagWriter` port (the tag service), and settles its outcome back as a
`SendOutcome` (`sent`: done, `failed`: refused with the reason), so the walk
moves on by `done` or `failed` exactly as it does after a send. Setting a
value is idempotent (the same value again changes nothing), so a dispatch
repeated after a crash between performing and settling does no harm.

`rm_task` and `webhook` steps are touches on the `rm` and a webhook channel:
this module builds their message (title, note, due time and priority of a
task; the payload of a webhook); the send path (contact policy, ledger,
idempotency) is the send step's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from marketloop.core.errors import MarketloopError
from marketloop.journeys.channels.sending import Message, SendOutcome, SendStatus
from marketloop.journeys.step_types import RmTaskSettings, UpdateSettings
from marketloop.journeys.steps import lookup
from marketloop.ports.journeys import UPDATE_CHANNEL, AttributeWriter, TagWriter

UPDATE = UPDATE_CHANNEL
_PRIORITY = {"urgent": "【紧急】", "high": "【重要】", "normal": "", "low": "【低】"}


class TagUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """What an update step asks for: set `tag` (or the profile field `field`) to `value` for `customer` (None:
    remove the customer's value)."""

    key: str
    customer: str
    tag: str
    value: str | None
    journey: str = ""
    field: str = ""


_update = msgspec.json.Decoder(TagUpdate)


def tag_update(
    key: str, customer: str, journey: str, settings: UpdateSettings, context: Mapping[str, Any]
) -> TagUpdate:
    """The update an `update` step queues; a `$a.b` value the context lacks is a `MissingValueError`."""
    value = None if settings.remove else _resolved(settings.value, context)
    return TagUpdate(key=key, customer=customer, tag=settings.tag, field=settings.field, value=value, journey=journey)


class MissingValueError(ValueError):
    """A `$a.b` value read from the entry's context, which lacks it."""


def _resolved(source: str, context: Mapping[str, Any]) -> str:
    if not source.startswith("$"):
        return source
    found = lookup(context, source[1:])
    if found is None:
        raise MissingValueError(source)
    return str(found)


def perform_update(
    writer: TagWriter | None, encoded: bytes, at: datetime, attributes: AttributeWriter | None = None
) -> SendOutcome:
    """Perform a queued update; bad input (an unknown tag, a tag that is not static, a value it does not take,
    a bad field name) fails it with the reason. Other errors (the warehouse is down) propagate: the row stays
    queued."""
    update = _update.decode(encoded)
    if update.field and attributes is None:
        return _outcome(update, SendStatus.FAILED, "journeys.no-attributes", "no profile store to set fields in")
    if not update.field and writer is None:
        return _outcome(update, SendStatus.FAILED, "journeys.no-tag-writer", "no tag service to update tags with")
    try:
        if update.field and attributes is not None:
            attributes.set_attribute(update.field, update.customer, update.value, at=at)
        elif writer is not None:
            writer.assign(update.tag, update.customer, update.value, at=at)
    except MarketloopError as error:
        return _outcome(update, SendStatus.FAILED, error.code, error.title)
    return _outcome(update, SendStatus.SENT, "", "")


def _outcome(update: TagUpdate, status: SendStatus, code: str, reason: str) -> SendOutcome:
    return SendOutcome(idempotency_key=update.key, status=status, channel=UPDATE, code=code, reason=reason)


def rm_task_message(settings: RmTaskSettings, variables: Mapping[str, str], due_at: datetime | None) -> Message:
    """The task as the RM sees it: the priority before the title, the due time after the note."""
    note = settings.note
    if due_at is not None:
        due = due_at.astimezone(ZoneInfo(settings.timezone))
        note += f"\n截止 due {due:%Y-%m-%d %H:%M}"
    return Message(text=note, title=_PRIORITY[settings.priority] + settings.title, variables=variables)
