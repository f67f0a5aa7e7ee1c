"""Who may do what: users, sessions, API tokens, roles and permissions, branch scoping, maker-checker approvals (M7)."""
