"""Saved analyses and metric alerts (M5).

Reserved in the revision chain so that work on several issues can land in any order; a
revision whose feature has not landed yet changes nothing.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
