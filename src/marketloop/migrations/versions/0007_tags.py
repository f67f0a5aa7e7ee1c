"""Tag (标签) definitions with every version kept, refresh runs, and each tag's statistics per run (M3).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "tag_versions",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("business_line", sa.String(64), nullable=False),
        sa.Column("shared_with", sa.Text, nullable=False),
        sa.Column("definition", sa.Text, nullable=True),
        sa.Column("tag_values", sa.Text, nullable=False),
        sa.Column("snapshots", sa.String(16), nullable=False),
        sa.Column("lineage", sa.Text, nullable=False),
        sa.Column("retired", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "tag_runs",
        sa.Column("run_id", sa.String(40), primary_key=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("full", sa.Boolean, nullable=False),
        sa.Column("refreshed", sa.Text, nullable=False),
        sa.Column("skipped", sa.Text, nullable=False),
    )
    op.create_table(
        "tag_stats",
        sa.Column("run_id", sa.String(40), primary_key=True),
        sa.Column("tag", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("population", sa.Integer, nullable=False),
        sa.Column("customers", sa.Integer, nullable=False),
        sa.Column("changed", sa.Integer, nullable=False),
        sa.Column("distribution", sa.Text, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
    )
    op.create_index("tag_stats_by_tag", "tag_stats", ["tag", "as_of"])


def downgrade() -> None:
    op.drop_index("tag_stats_by_tag", table_name="tag_stats")
    op.drop_table("tag_stats")
    op.drop_table("tag_runs")
    op.drop_table("tag_versions")
