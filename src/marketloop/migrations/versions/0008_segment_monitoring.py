"""Fixed-segment (固化客群) monitoring and stratification snapshots (M3).

Reserved in the revision chain so that work on several issues can land in any order; a
revision whose feature has not landed yet changes nothing.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
