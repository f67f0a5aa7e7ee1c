"""Journey outbox (发送队列): touches a walk decided, committed with the instance that decided them.

`journey_outbox` holds one row per touch (its idempotency key is the primary
key, so a walk repeated after a crash adds nothing); the dispatcher sends
queued rows through the send service and settles them (outcome, and the
instance due again) in one transaction. Instances get the `cause` that let
them in (the trigger fire or the batch entry), and the due index becomes
(due_at, journey_id, customer), partial on a due time: only open instances
have one, so the runtime's "what is due" is an ordered range scan however many
are waiting, and instances that wait for a touch or are done cost no index
entry there.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    op.create_table(
        "journey_outbox",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("journey_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("customer", sa.String(200), nullable=False),
        sa.Column("run", sa.Integer, nullable=False),
        sa.Column("step", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_journey_outbox_queued", "journey_outbox", ["status", "not_before"])
    op.add_column("journey_instances", sa.Column("cause", sa.String(400), nullable=False, server_default=""))
    op.drop_index("ix_journey_instances_due", table_name="journey_instances")
    op.create_index(
        "ix_journey_instances_due_at",
        "journey_instances",
        ["due_at", "journey_id", "customer"],
        sqlite_where=sa.text("due_at IS NOT NULL"),
        postgresql_where=sa.text("due_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_journey_instances_due_at", table_name="journey_instances")
    op.create_index("ix_journey_instances_due", "journey_instances", ["status", "due_at"])
    with op.batch_alter_table("journey_instances") as batch:
        batch.drop_column("cause")
    op.drop_index("ix_journey_outbox_queued", table_name="journey_outbox")
    op.drop_table("journey_outbox")
