"""Saved analyses (已保存的分析): a spec under a name, run again whenever asked.

A saved spec keeps its JSON form as written, so `{"range": {"last": "30d"}}`
means the last 30 days of each run. It is checked (parsed and compiled)
when saved, so a saved analysis always ran once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from marketloop.analytics.service import AnalysisResult, AnalyticsService
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.scope import EVERYTHING, Scope
from marketloop.ports.analytics import AnalyticsRepository, SavedAnalysis
from marketloop.ports.clock import Clock


def _new_id() -> str:
    return "ana_" + secrets.token_hex(6)


def _not_found(analysis_id: str) -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.NOT_FOUND, code="analytics.not-found", title=f"No saved analysis {analysis_id}"
    )


class AnalysisLibrary:
    def __init__(
        self,
        analytics: AnalyticsService,
        repository: AnalyticsRepository,
        clock: Clock,
        *,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self._analytics = analytics
        self._repository = repository
        self._clock = clock
        self._new_id = new_id

    def save(self, name: str, spec: Mapping[str, Any]) -> SavedAnalysis:
        """Save a spec under `name` (a `SpecError` when it is not valid)."""
        saved = SavedAnalysis(
            analysis_id=self._new_id(), name=self._checked(name, spec), spec=dict(spec), created_at=self._clock.now()
        )
        self._repository.save_analysis(saved)
        return saved

    def change(self, analysis_id: str, name: str, spec: Mapping[str, Any]) -> SavedAnalysis:
        """Give a saved analysis a new name and spec, checked as `save` checks them; NOT_FOUND when there is none."""
        changed = replace(self.get(analysis_id), name=self._checked(name, spec), spec=dict(spec))
        if not self._repository.replace_analysis(changed):
            raise _not_found(analysis_id)
        return changed

    def delete(self, analysis_id: str) -> None:
        """Forget a saved analysis; NOT_FOUND when there is none."""
        if not self._repository.delete_analysis(analysis_id):
            raise _not_found(analysis_id)

    def _checked(self, name: str, spec: Mapping[str, Any]) -> str:
        if not name.strip():
            raise MarketloopError(kind=ErrorKind.INVALID, code="analytics.invalid-name", title="The name is empty")
        self._analytics.compile(self._analytics.parse(spec))
        return name.strip()

    def list(self) -> list[SavedAnalysis]:
        return self._repository.analyses()

    def get(self, analysis_id: str) -> SavedAnalysis:
        found = self._repository.analysis(analysis_id)
        if found is None:
            raise _not_found(analysis_id)
        return found

    def run(self, analysis_id: str, *, as_of: datetime | None = None, scope: Scope = EVERYTHING) -> AnalysisResult:
        """Run a saved analysis now (or as of `as_of`)."""
        return self._analytics.query(self.get(analysis_id).spec, as_of=as_of, scope=scope)
