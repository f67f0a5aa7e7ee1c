"""Operational state on SQL databases (SQLite embedded, PostgreSQL scale-out) through SQLAlchemy 2."""
