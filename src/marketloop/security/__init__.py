"""Security engine: field encryption, keyed hashes (and, with M7, auth, roles, scope, audit)."""
