"""Persistence: the Store interface (store.py), the factory that opens one (factory.py),
and the SQLite backend (sqlite_store.py, pool.py, schema.py)."""
