"""The triggers a processor runs: the enabled ones of the repository, re-read when its revision moves."""

from __future__ import annotations

import logging

from marketloop.core.errors import MarketloopError
from marketloop.journeys.triggers import PerCustomer, ScheduleTrigger, SegmentTrigger, Trigger, parse_trigger
from marketloop.ports.realtime import TriggerRepository

log = logging.getLogger(__name__)


class ActiveTriggers:
    """Enabled triggers by id, the per-customer ones in id order, and the segments they watch."""

    def __init__(self, repository: TriggerRepository) -> None:
        self._repository = repository
        self._revision = -1
        self.by_id: dict[str, Trigger] = {}
        self.per_customer: list[PerCustomer] = []
        self.segment_ids: frozenset[str] = frozenset()

    def refresh(self) -> bool:
        """Re-read the triggers when any was saved since the last read (one cheap query otherwise); True when
        something was saved (a schedule's timer may have come with it)."""
        revision = self._repository.revision()
        if revision == self._revision:
            return False
        found: dict[str, Trigger] = {}
        for record in self._repository.list():
            if not record.enabled:
                continue
            try:
                found[record.trigger_id] = parse_trigger(record.definition)
            except MarketloopError as error:  # stored by an older version with other rules: skip, say so
                log.error("trigger %s cannot be read and does not run: %s", record.trigger_id, error)
        self.by_id = found
        self.per_customer = [t for t in found.values() if not isinstance(t, ScheduleTrigger)]
        self.segment_ids = frozenset(t.segment_id for t in found.values() if isinstance(t, SegmentTrigger))
        self._revision = revision
        return True
