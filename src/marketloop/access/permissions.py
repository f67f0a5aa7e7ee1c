"""The permission catalog (权限目录) and the built-in roles, as data.

A permission is `<area>:<verb>`. Routes declare one with
`marketloop.api.auth.require("<area>:<verb>")`; `require` refuses a name
that is not in `PERMISSIONS`, so a typo fails at import, not in production.
A role is a named set of permissions: the built-in ones below, plus custom
roles an admin adds (`marketloop roles create`). docs/permissions.md is
generated from these tables and the app's routes (`marketloop docs permissions`).
"""

from __future__ import annotations

from types import MappingProxyType

PERMISSIONS: MappingProxyType[str, str] = MappingProxyType(
    {
        "customers:read": "Search customers, read profiles and timelines (personal fields masked)",
        "customers:reveal": "See names, phones, ID numbers and emails in clear",
        "customers:export": "Export customer lists (with an approved request)",
        "segments:read": "Count segments, read definitions and snapshots",
        "segments:write": "Save segments, materialise snapshots",
        "segments:export": "Export a segment's members (with an approved request)",
        "tags:read": "Read tag definitions and values",
        "tags:write": "Create and change tag definitions, refresh tags",
        "tags:delete": "Delete tags (with an approved request)",
        "analytics:read": "Event analysis, funnels, retention, paths, attribution, effect reports",
        "analytics:write": "Save, change and delete saved analyses and metric alert rules",
        "experiments:read": "Read experiments and their results",
        "experiments:write": "Create and change experiments",
        "journeys:read": "Read journeys and their runs",
        "journeys:write": "Create and change journey drafts",
        "journeys:publish": "Publish journeys (with an approved request)",
        "sends:bulk": "Bulk sends above the approval threshold",
        "content:read": "Read the content library",
        "content:write": "Create and change content",
        "models:read": "Read models and their scores",
        "models:promote": "Promote a model version (with an approved request)",
        "tracking:read": "Read the tracking plan, violations and the quarantine",
        "tracking:write": "Change the tracking plan, replay the quarantine",
        "identity:read": "Look up OneIDs and their history",
        "identity:write": "Merge and unmerge identities",
        "sources:admin": "Manage event sources and their write keys",
        "users:admin": "Manage users, roles and API tokens",
        "audit:read": "Read the audit log",
        "approvals:decide": "Approve or reject other users' requests (maker-checker)",
        "consent:read": "Read customers' consent records",
        "consent:write": "Record consent and opt-outs",
    }
)

ADMIN = "admin"
MARKETER = "marketer"
ANALYST = "analyst"
APPROVER = "approver"
RELATIONSHIP_MANAGER = "relationship_manager"
BRANCH_MANAGER = "branch_manager"
AUDITOR = "auditor"

_READ_CUSTOMERS = ("customers:read", "consent:read")
_READ_MARKETING = ("segments:read", "tags:read", "journeys:read", "content:read", "experiments:read")

BUILTIN_ROLES: MappingProxyType[str, tuple[str, frozenset[str]]] = MappingProxyType(
    {
        ADMIN: ("Everything, including users, roles and sources", frozenset(PERMISSIONS)),
        MARKETER: (
            "Builds segments, tags, journeys and content; requests exports and publishing",
            frozenset(
                {
                    *_READ_CUSTOMERS,
                    *_READ_MARKETING,
                    "segments:write",
                    "segments:export",
                    "customers:export",
                    "tags:write",
                    "tags:delete",
                    "journeys:write",
                    "journeys:publish",
                    "sends:bulk",
                    "content:write",
                    "experiments:write",
                    "analytics:read",
                    "analytics:write",
                    "models:read",
                    "identity:read",
                    "tracking:read",
                    "consent:write",
                }
            ),
        ),
        ANALYST: (
            "Reads and analyses; no changes to what customers receive",
            frozenset(
                {
                    *_READ_CUSTOMERS,
                    *_READ_MARKETING,
                    "analytics:read",
                    "analytics:write",
                    "models:read",
                    "models:promote",
                    "identity:read",
                    "tracking:read",
                    "experiments:write",
                }
            ),
        ),
        APPROVER: (
            "Reviews and decides requests of makers (maker-checker)",
            frozenset({*_READ_CUSTOMERS, *_READ_MARKETING, "analytics:read", "models:read", "approvals:decide"}),
        ),
        RELATIONSHIP_MANAGER: (
            "Serves their own customers (客户经理); sees only customers assigned to them",
            frozenset({*_READ_CUSTOMERS, "customers:reveal", "segments:read", "tags:read", "consent:write"}),
        ),
        BRANCH_MANAGER: (
            "Sees the customers of their branch and its sub-branches",
            frozenset({*_READ_CUSTOMERS, *_READ_MARKETING, "analytics:read", "customers:reveal", "approvals:decide"}),
        ),
        AUDITOR: (
            "Reads the audit log and the configuration; no customer data in clear",
            frozenset({"audit:read", "customers:read", "consent:read", "tracking:read", *_READ_MARKETING}),
        ),
    }
)

# Roles that only make sense with a branch or an RM behind them.
NEEDS_BRANCH = frozenset({BRANCH_MANAGER})
NEEDS_RM = frozenset({RELATIONSHIP_MANAGER})


def unknown_permissions(names: set[str] | frozenset[str]) -> list[str]:
    return sorted(name for name in names if name not in PERMISSIONS)
