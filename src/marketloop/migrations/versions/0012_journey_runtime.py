"""Journey runtime (旅程运行): journeys, their immutable published versions, instances per customer, the step log.

`journey_consumed_fires` holds every trigger fire a journey consumed (its
primary key makes a second entry from the same fire impossible); it is written
in the same transaction as the instance it created. `journey_step_log` is one
row per thing that happened at a step (entered, sent, suppressed, failed,
assigned, converted, exited): the per-step counts are read from it.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("journey_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("draft", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "journey_versions",
        sa.Column("journey_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "journey_instances",
        sa.Column("journey_id", sa.String(64), primary_key=True),
        sa.Column("customer", sa.String(200), primary_key=True),
        sa.Column("run", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("step", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_journey_instances_due", "journey_instances", ["status", "due_at"])
    op.create_index("ix_journey_instances_customer", "journey_instances", ["customer", "status"])
    op.create_table(
        "journey_consumed_fires",
        sa.Column("journey_id", sa.String(64), primary_key=True),
        sa.Column("fire_id", sa.String(400), primary_key=True),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "journey_step_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("journey_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("customer", sa.String(200), nullable=False),
        sa.Column("run", sa.Integer, nullable=False),
        sa.Column("step", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_journey_step_log_journey", "journey_step_log", ["journey_id", "step", "kind"])


def downgrade() -> None:
    op.drop_index("ix_journey_step_log_journey", table_name="journey_step_log")
    op.drop_table("journey_step_log")
    op.drop_table("journey_consumed_fires")
    op.drop_index("ix_journey_instances_customer", table_name="journey_instances")
    op.drop_index("ix_journey_instances_due", table_name="journey_instances")
    op.drop_table("journey_instances")
    op.drop_table("journey_versions")
    op.drop_table("journeys")
