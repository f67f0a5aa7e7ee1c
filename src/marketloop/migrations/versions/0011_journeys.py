"""Real-time engine (M4): triggers, per-customer trigger state, durable timers, fires and stream offsets.

`trigger_fires` is the stream processor's outbox: each row commits in the same
transaction as the trigger state change and the consumed event-log offset
(`stream_offsets`), and its `fire_id` is unique, so a replay adds nothing.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.create_table(
        "triggers",
        sa.Column("trigger_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "trigger_states",
        sa.Column("trigger_id", sa.String(64), primary_key=True),
        sa.Column("customer", sa.String(200), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
    )
    op.create_index("ix_trigger_states_customer", "trigger_states", ["customer"])
    op.create_table(
        "trigger_timers",
        sa.Column("timer_id", sa.String(400), primary_key=True),
        sa.Column("trigger_id", sa.String(64), nullable=False),
        sa.Column("customer", sa.String(200), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_trigger_timers_due", "trigger_timers", ["partition", "due_at"])
    op.create_table(
        "trigger_fires",
        sa.Column("fire_id", sa.String(400), primary_key=True),
        sa.Column("trigger_id", sa.String(64), nullable=False),
        sa.Column("customer", sa.String(200), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("context", sa.Text, nullable=False),
    )
    op.create_index("ix_trigger_fires_trigger", "trigger_fires", ["trigger_id", "recorded_at"])
    op.create_table(
        "stream_offsets",
        sa.Column("consumer", sa.String(40), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stream_offsets")
    op.drop_index("ix_trigger_fires_trigger", table_name="trigger_fires")
    op.drop_table("trigger_fires")
    op.drop_index("ix_trigger_timers_due", table_name="trigger_timers")
    op.drop_table("trigger_timers")
    op.drop_index("ix_trigger_states_customer", table_name="trigger_states")
    op.drop_table("trigger_states")
    op.drop_table("triggers")
