"""Persistence: the connection pool, the schema and the Store interface."""
