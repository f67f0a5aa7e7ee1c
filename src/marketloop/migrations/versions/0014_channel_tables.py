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


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    for table in channel_metadata.sorted_tables:
        if table.name not in existing:
            table.create(bind)
            continue
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(channel_metadata.sorted_tables):
        table.drop(bind, checkfirst=True)
