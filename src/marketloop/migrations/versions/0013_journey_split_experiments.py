"""Journey split experiments: which experiment each split step of each published journey version assigns under.

A journey's split step is an experiment (实验) whose id is
`journey:<journey>:<step>[:<seed>]`, longer than the 64 characters an
imported experiment's id may have: experiment ids widen to 200 (SQLite does
not enforce a VARCHAR length, so only other databases are altered).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"

_WIDENED = (("experiments", "experiment_id"), ("experiment_looks", "experiment_id"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for table, column in _WIDENED:
            op.alter_column(table, column, type_=sa.String(200), existing_type=sa.String(64), existing_nullable=False)
    op.create_table(
        "journey_split_versions",
        sa.Column("journey_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("step", sa.String(40), primary_key=True),
        sa.Column("experiment_id", sa.String(200), nullable=False),
    )
    op.create_index("ix_journey_split_versions_experiment", "journey_split_versions", ["experiment_id"])


def downgrade() -> None:
    op.drop_index("ix_journey_split_versions_experiment", table_name="journey_split_versions")
    op.drop_table("journey_split_versions")
    if op.get_bind().dialect.name != "sqlite":
        for table, column in _WIDENED:
            op.alter_column(table, column, type_=sa.String(64), existing_type=sa.String(200), existing_nullable=False)
