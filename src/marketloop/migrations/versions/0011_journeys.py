"""Journeys, their versions, instances, timers and the send outbox (M4).

Reserved in the revision chain so that work on several issues can land in any order; a
revision whose feature has not landed yet changes nothing.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
