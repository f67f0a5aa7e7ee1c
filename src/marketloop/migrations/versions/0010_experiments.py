"""Experiments, variants and their analyses (M5).

Reserved in the revision chain so that work on several issues can land in any order; a
revision whose feature has not landed yet changes nothing.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
