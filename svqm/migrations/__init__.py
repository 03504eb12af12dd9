"""Alembic migrations; run them with `svqm db upgrade`."""
