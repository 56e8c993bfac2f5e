"""Fixtures: a fresh database per test module in the cluster named by FS_TEST_DSN.

FS_TEST_DSN is a libpq connection string to a PostgreSQL 15 cluster with feature_store installed
and preloaded (scripts/test.sh starts one); the user must be allowed to create databases.
Each module's database gets the extension and the quickstart example (scripts/example_data.sql)
with its entities, views and service registered, and is dropped afterwards.
"""

from __future__ import annotations

import os
import pathlib
import sys
import uuid
from typing import Iterator

import psycopg
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))  # the checkout's package, not an installed copy

QUICKSTART_SQL = """
CREATE EXTENSION feature_store;
SELECT fs_register_entity('driver', 'driver_id', description => 'A taxi driver');
SELECT fs_register_entity('customer', 'customer_id', description => 'A rider');
SELECT fs_register_view('driver_stats', 'driver_hourly_stats', entity => 'driver',
       event_time => 'event_timestamp', created_time => 'created', ttl => '1 day');
SELECT fs_register_view('customer_profile', 'customer_daily_profile', entity => 'customer', ttl => '2 days');
SELECT fs_register_service('ride_model', ARRAY['driver_stats:conv_rate', 'driver_stats:acc_rate',
       'driver_stats:avg_daily_trips', 'customer_profile:current_balance']);
"""


def _base_dsn() -> str:
    dsn = os.environ.get("FS_TEST_DSN")
    if not dsn:
        pytest.fail("FS_TEST_DSN is not set: it must name a cluster with feature_store preloaded "
                    "(scripts/test.sh starts one)")
    return dsn


def dsn_for(dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(_base_dsn(), dbname=dbname)


@pytest.fixture(scope="module")
def empty_db(request) -> Iterator[str]:
    """A new empty database (the extension not created); yields its DSN."""
    name = f"fs_py_{request.module.__name__.rsplit('.', 1)[-1]}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_base_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield dsn_for(name)
    finally:
        with psycopg.connect(_base_dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def db(empty_db: str) -> str:
    """A database with the extension and the registered quickstart example; yields its DSN."""
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute((ROOT / "scripts" / "example_data.sql").read_text())
        conn.execute(QUICKSTART_SQL)
    return empty_db


@pytest.fixture
def conn(db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db, autocommit=True) as c:
        yield c


@pytest.fixture
def store(db: str):
    from feature_store import FeatureStore
    with FeatureStore(db, progress=False) as s:
        yield s
