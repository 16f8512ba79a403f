"""Where the time series lives: one interface (:class:`Store`), SQLite and PostgreSQL behind it."""

from __future__ import annotations

from flexmeter.quantumleap.store.base import Store


def open_store(db_path: str | None = None, postgres_dsn: str | None = None) -> Store:
    """PostgreSQL when a DSN is given, else SQLite at ``db_path``."""
    if postgres_dsn:
        from flexmeter.quantumleap.store.postgres import PostgresStore

        return PostgresStore(postgres_dsn)
    from flexmeter.quantumleap.store.sqlite import SqliteStore

    return SqliteStore(db_path or "timeseries.db")


__all__ = ["Store", "open_store"]
