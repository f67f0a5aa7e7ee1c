"""Channel and contact-policy tables (触达渠道与触达策略): the delivery ledger, contact history and its per-customer
locks, campaign budgets, suppression lists, the in-app inbox and RM tasks.

The tables are defined once, in `marketloop.adapters.sql.channel_tables`; this
migration creates them from those definitions. Before it existed the channel
wiring created them at start-up, so a database may already hold some or all
of them: only what is missing is created (a table with its indexes, or an
index of a table that exists), and nothing that exists is altered.

Because the definitions are shared, a later change to a channel table needs
its own migration, and this one must then keep creating the shape it had
(copy the old definition here before changing the shared one).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from marketloop.adapters.sql.channel_tables import channel_metadata

revision = "0014"
down_revision = "0013"


def _as_of_0014() -> sa.MetaData:
    """The shared definitions as they were at this revision: `rm_tasks` without the due time and priority
    that 0016 added."""
    metadata = sa.MetaData()
    for table in channel_metadata.sorted_tables:
        if table.name != "rm_tasks":
            table.to_metadata(metadata)
    sa.Table(
        "rm_tasks",
        metadata,
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("customer", sa.String(100), nullable=False),
        sa.Column("relationship_manager", sa.String(100), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("closed_at", sa.String(40), nullable=True),
        sa.Column("outcome", sa.String(500), nullable=False),
        sa.Index("ix_rm_tasks_rm", "relationship_manager", "status"),
    )
    return metadata


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    for table in _as_of_0014().sorted_tables:
        if table.name not in existing:
            table.create(bind)
            continue
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(_as_of_0014().sorted_tables):
        table.drop(bind, checkfirst=True)
