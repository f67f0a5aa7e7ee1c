"""Experiments (实验): every journey split and holdout, and imported A/B tests; each look at their results.

Assignments, touches and conversions live in the warehouse (see
marketloop.ports.experiments); this store keeps the definitions and the
looks that the peeking check counts.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.String(64), primary_key=True),
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
    op.create_index("ix_experiments_journey", "experiments", ["journey_id"])
    op.create_table(
        "experiment_looks",
        sa.Column("experiment_id", sa.String(64), primary_key=True),
        sa.Column("analysed_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("customers", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("experiment_looks")
    op.drop_index("ix_experiments_journey", table_name="experiments")
    op.drop_table("experiments")
