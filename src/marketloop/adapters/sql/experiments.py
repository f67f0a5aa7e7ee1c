"""`ExperimentRepository` on SQL: experiment definitions and every look at their results."""

from __future__ import annotations

import builtins

import orjson
import sqlalchemy as sa

from marketloop.adapters.sql.tables import metadata
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import as_utc
from marketloop.ports.experiments import Experiment, ExperimentKind, Look, VariantPlan

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("experiment_id", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("control", sa.String(64), nullable=False),
    sa.Column("variants", sa.Text, nullable=False),
    sa.Column("goal", sa.String(64), nullable=False),
    sa.Column("window_days", sa.Integer, nullable=False),
    sa.Column("campaign", sa.String(200), nullable=False),
    sa.Column("journey_id", sa.String(64), nullable=True),
    sa.Column("planned_n", sa.Integer, nullable=True),
    sa.Column("mde_rel", sa.Float, nullable=True),
    sa.Column("alpha", sa.Float, nullable=False),
    sa.Column("power", sa.Float, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

experiment_looks = sa.Table(
    "experiment_looks",
    metadata,
    sa.Column("experiment_id", sa.String(200), primary_key=True),
    sa.Column("analysed_at", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("customers", sa.Integer, nullable=False),
)


class SqlExperimentRepository:
    """Experiments in `experiments`, looks at their results in `experiment_looks`."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def add(self, experiment: Experiment) -> None:
        try:
            with self._engine.begin() as connection:
                connection.execute(experiments.insert().values(**_row(experiment)))
        except sa.exc.IntegrityError:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="experiments.exists",
                title="The experiment exists",
                detail=f"an experiment with id {experiment.experiment_id!r} exists already",
            ) from None

    def save(self, experiment: Experiment) -> None:
        row = _row(experiment)
        table = experiments.c
        with self._engine.begin() as connection:
            updated = connection.execute(
                experiments.update().where(table.experiment_id == experiment.experiment_id).values(**row)
            )
            if updated.rowcount == 0:
                connection.execute(experiments.insert().values(**row))

    def get(self, experiment_id: str) -> Experiment | None:
        with self._engine.connect() as connection:
            row = (
                connection.execute(experiments.select().where(experiments.c.experiment_id == experiment_id))
                .mappings()
                .first()
            )
        return _experiment(row) if row is not None else None

    def list(self) -> list[Experiment]:
        query = experiments.select().order_by(experiments.c.created_at.desc(), experiments.c.experiment_id)
        with self._engine.connect() as connection:
            return [_experiment(row) for row in connection.execute(query).mappings().all()]

    def record_look(self, look: Look) -> None:
        row = {"experiment_id": look.experiment_id, "analysed_at": look.analysed_at, "customers": look.customers}
        try:
            with self._engine.begin() as connection:
                connection.execute(experiment_looks.insert().values(**row))
        except sa.exc.IntegrityError:
            # Two looks in the same instant are one look; the first is kept.
            return

    def looks(self, experiment_id: str) -> builtins.list[Look]:
        query = (
            experiment_looks.select()
            .where(experiment_looks.c.experiment_id == experiment_id)
            .order_by(experiment_looks.c.analysed_at)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            Look(experiment_id=row["experiment_id"], analysed_at=as_utc(row["analysed_at"]), customers=row["customers"])
            for row in rows
        ]


def _row(experiment: Experiment) -> dict[str, object]:
    return {
        "experiment_id": experiment.experiment_id,
        "name": experiment.name,
        "description": experiment.description,
        "kind": experiment.kind,
        "control": experiment.control,
        "variants": orjson.dumps([{"name": v.name, "share": v.share} for v in experiment.variants]).decode(),
        "goal": experiment.goal,
        "window_days": experiment.window_days,
        "campaign": experiment.campaign,
        "journey_id": experiment.journey_id,
        "planned_n": experiment.planned_n,
        "mde_rel": experiment.mde_rel,
        "alpha": experiment.alpha,
        "power": experiment.power,
        "created_at": experiment.created_at,
    }


def _kind(value: str) -> ExperimentKind:
    if value == "holdout":
        return "holdout"
    return "journey-split" if value == "journey-split" else "ab"


def _experiment(row: sa.RowMapping) -> Experiment:
    return Experiment(
        experiment_id=row["experiment_id"],
        name=row["name"],
        description=row["description"],
        kind=_kind(row["kind"]),
        control=row["control"],
        variants=tuple(VariantPlan(name=v["name"], share=float(v["share"])) for v in orjson.loads(row["variants"])),
        goal=row["goal"],
        window_days=int(row["window_days"]),
        campaign=row["campaign"],
        journey_id=row["journey_id"],
        planned_n=row["planned_n"],
        mde_rel=row["mde_rel"],
        alpha=float(row["alpha"]),
        power=float(row["power"]),
        created_at=as_utc(row["created_at"]),
    )
