"""Alembic migrations of the SQL schema (env.py and versions/); run them with `dirchain db` (registry_api.schema)."""
