"""`TrackingPlanRepository` on SQL: one row per plan version, the plan as its JSON document."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import orjson
import sqlalchemy as sa

from marketloop.adapters.sql.tables import tracking_plans
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.tracking import TrackingPlan
from marketloop.core.tracking_document import parse_plan, plan_document


class SqlTrackingPlanRepository:
    """Plan versions in the `tracking_plans` table."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def current_version(self) -> int:
        with self._engine.connect() as connection:
            version = connection.execute(sa.select(sa.func.max(tracking_plans.c.version))).scalar()
        return int(version) if version is not None else 0

    def current(self) -> TrackingPlan | None:
        query = sa.select(tracking_plans.c.version, tracking_plans.c.document)
        with self._engine.connect() as connection:
            row = connection.execute(query.order_by(tracking_plans.c.version.desc()).limit(1)).first()
        if row is None:
            return None
        return replace(parse_plan(orjson.loads(row.document)).plan, version=int(row.version))

    def add(self, plan: TrackingPlan, created_at: datetime) -> None:
        document = orjson.dumps(plan_document(plan)).decode()
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    tracking_plans.insert().values(version=plan.version, document=document, created_at=created_at)
                )
        except sa.exc.IntegrityError:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="tracking.plan-changed",
                title="The tracking plan was changed meanwhile",
                detail=f"version {plan.version} already exists; read the plan again and reapply your change",
            ) from None
