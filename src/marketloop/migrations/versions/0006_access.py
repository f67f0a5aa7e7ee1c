"""Users, roles, API tokens, sessions and approvals (M7).

Reserved in the revision chain so that work on several issues can land in any order; a
revision whose feature has not landed yet changes nothing.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
