"""The database a test runs on, chosen with `pytest --database=sqlite|postgresql`.

SQLite (the default) is a file in the test's data dir. PostgreSQL is the local
server's database `test`, in a schema of the test's own that is dropped after it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

DATABASES = ("sqlite", "postgresql")
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def chosen_database(config: pytest.Config) -> str:
    database: str = config.getoption("--database")
    return database


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A new, empty schema; yields the database URL whose connections use only it."""
    schema = f"t_{uuid.uuid4().hex}"
    with _admin() as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with _admin() as admin:
            # A connection the test left inside a transaction would hold the drop for ever.
            admin.execute("SET lock_timeout = '20s'")
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(POSTGRES, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL at {POSTGRES} is not reachable (start it; .ci/run does): {error}")
