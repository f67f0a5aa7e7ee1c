"""Tables of channels and contact policy: the delivery ledger, contact history, campaign budgets, suppression
lists, the in-app inbox and RM tasks.

They live on their own `MetaData`, the one definition of these tables:
migration 0014 (`0014_channel_tables.py`) creates them from it in the Alembic
chain, which is how the application gets them. A change to one of them needs
a new migration, and 0014 must keep creating the shape it had (copy the old
definition into it first). `ensure_channel_tables` creates them outside the
chain, for a store opened without the migrations (tests of the adapters).
Times are canonical UTC ISO strings (as in the audit log), so they compare
and sort the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading

import sqlalchemy as sa

channel_metadata = sa.MetaData()

channel_deliveries = sa.Table(
    "channel_deliveries",
    channel_metadata,
    sa.Column("idempotency_key", sa.String(200), primary_key=True),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("customer", sa.String(100), nullable=False),
    sa.Column("campaign", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("provider_message_id", sa.String(200), nullable=False),
    sa.Column("error", sa.String(500), nullable=False),
    sa.Column("parts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("retry_at", sa.String(40), nullable=True),
    sa.Index("ix_channel_deliveries_provider", "channel", "provider_message_id"),
    sa.Index("ix_channel_deliveries_customer", "customer", "kind"),
    sa.Index("ix_channel_deliveries_status", "status", "updated_at"),
)

contact_history = sa.Table(
    "contact_history",
    channel_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer", sa.String(100), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("purpose", sa.String(20), nullable=False),
    sa.Column("campaign", sa.String(200), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("decided_at", sa.String(40), nullable=False),
    sa.Column("effective_at", sa.String(40), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Index("ix_contact_history_customer", "customer", "effective_at"),
    sa.Index("ix_contact_history_campaign", "campaign", "decided_at"),
    sa.Index("ix_contact_history_key", "customer", "idempotency_key"),
)

# One row per customer, updated first by every decision: the lock that serialises decisions about one customer.
contact_locks = sa.Table(
    "contact_locks",
    channel_metadata,
    sa.Column("customer", sa.String(100), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)

campaign_budgets = sa.Table(
    "campaign_budgets",
    channel_metadata,
    sa.Column("campaign", sa.String(200), primary_key=True),
    sa.Column("spent_fen", sa.BigInteger, nullable=False),
)

suppression_entries = sa.Table(
    "suppression_entries",
    channel_metadata,
    sa.Column("list_name", sa.String(60), primary_key=True),
    sa.Column("customer", sa.String(100), primary_key=True),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("added_at", sa.String(40), nullable=False),
    sa.Column("until", sa.String(40), nullable=True),
    sa.Index("ix_suppression_entries_customer", "customer"),
)

inbox_messages = sa.Table(
    "inbox_messages",
    channel_metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("customer", sa.String(100), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("link", sa.String(1000), nullable=False),
    sa.Column("campaign", sa.String(200), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("read_at", sa.String(40), nullable=True),
    sa.Index("ix_inbox_messages_customer", "customer", "created_at"),
)

rm_tasks = sa.Table(
    "rm_tasks",
    channel_metadata,
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
    sa.Column("due_at", sa.String(40), nullable=True),
    sa.Column("priority", sa.String(10), nullable=False, server_default="normal"),
    sa.Index("ix_rm_tasks_rm", "relationship_manager", "status"),
    sa.Index("ix_rm_tasks_due", "relationship_manager", "status", "due_at"),
)


_creating = threading.Lock()


def ensure_channel_tables(engine: sa.Engine) -> None:
    """Create the tables above when absent, outside the migrations (idempotent; safe while another thread or
    process does the same). The application does not call it: its stores are upgraded by Alembic."""
    with _creating:
        try:
            channel_metadata.create_all(engine, checkfirst=True)
        except sa.exc.DatabaseError:  # another process created a table between the check and the CREATE
            channel_metadata.create_all(engine, checkfirst=True)
