"""Segment (客群) definitions, every version kept, and the record of each materialised snapshot.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "segment_versions",
        sa.Column("segment_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "segment_snapshots",
        sa.Column("segment_id", sa.String(64), primary_key=True),
        sa.Column("snapshot_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("customers", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("segment_snapshots")
    op.drop_table("segment_versions")
