"""RM tasks get their due time and priority as columns (客户经理任务的截止时间与优先级).

They had been written into the title (【重要】) and the note (截止 …) only, so the
workbench could not sort by them. `due_at` is the canonical time text like
`created_at` (None: no due time); `priority` is low / normal / high / urgent.
The index serves an RM's open tasks, earliest due first.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    # only what is missing: a store whose channel tables were created at start-up by a build that had these
    # columns (before 0014 took over) has them already
    inspector = sa.inspect(op.get_bind())
    columns = {column["name"] for column in inspector.get_columns("rm_tasks")}
    missing = [
        column
        for column in (
            sa.Column("due_at", sa.String(40), nullable=True),
            sa.Column("priority", sa.String(10), nullable=False, server_default="normal"),
        )
        if column.name not in columns
    ]
    if missing:
        with op.batch_alter_table("rm_tasks") as batch:
            for column in missing:
                batch.add_column(column)
    if "ix_rm_tasks_due" not in {index["name"] for index in inspector.get_indexes("rm_tasks")}:
        op.create_index("ix_rm_tasks_due", "rm_tasks", ["relationship_manager", "status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_rm_tasks_due", table_name="rm_tasks")
    with op.batch_alter_table("rm_tasks") as batch:
        batch.drop_column("priority")
        batch.drop_column("due_at")
