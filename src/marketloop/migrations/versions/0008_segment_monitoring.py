"""Fixed-segment (固化客群) monitoring, segment size alert rules and lookalike reports (M3).

The frozen member lists and the stage of every member per snapshot date live
in the warehouse (see `adapters/duckdb_segment_monitoring.py`); this revision
adds their definitions to the operational store.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "segment_fixed",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("segment_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("members", sa.Integer, nullable=False),
        sa.Column("stages", sa.Text, nullable=True),
        sa.Column("share_threshold", sa.Float, nullable=False),
        sa.Column("shrink_threshold", sa.Float, nullable=False),
    )
    op.create_index("ix_segment_fixed_segment_id", "segment_fixed", ["segment_id"])
    op.create_table(
        "segment_size_rules",
        sa.Column("segment_id", sa.String(64), primary_key=True),
        sa.Column("drop_pct", sa.Float, nullable=True),
        sa.Column("spike_pct", sa.Float, nullable=True),
        sa.Column("baseline", sa.Integer, nullable=False),
    )
    op.create_table(
        "segment_lookalikes",
        sa.Column("segment_id", sa.String(64), primary_key=True),
        sa.Column("seed_id", sa.String(64), nullable=False),
        sa.Column("seed_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("segment_lookalikes")
    op.drop_table("segment_size_rules")
    op.drop_table("segment_fixed")
