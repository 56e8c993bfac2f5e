"""Comparison helpers: DataFrame cells and SQL results as plain Python values."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any, List, Sequence

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql


def py(v: Any) -> Any:
    """A DataFrame cell or SQL value as a comparable Python value (missing -> None)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, decimal.Decimal):
        return float(v)  # numeric is delivered as the nearest float64
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return dt.datetime(v.year, v.month, v.day)
    return v


def frame_rows(df: pd.DataFrame, columns: Sequence[str]) -> List[tuple]:
    return [tuple(py(v) for v in row) for row in zip(*(df[c].tolist() for c in columns))]


def sql_rows(conn: psycopg.Connection, query: str, params: Any = None) -> List[tuple]:
    with conn.cursor() as cur:
        cur.execute(query, params)
        return [tuple(py(v) for v in r) for r in cur.fetchall()]


def sql_columns(conn: psycopg.Connection, query: str) -> List[str]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM ({query}) q LIMIT 0")
        return [d.name for d in cur.description]


def join_sql(conn: psycopg.Connection, spine: str, features: Sequence[str], spine_time: str = "event_timestamp",
             full_names: bool = False, as_of_created: bool = False, order_by: str = "") -> str:
    """The SQL of fs_point_in_time_join over a spine relation, with its column list from the server."""
    with conn.cursor() as cur:
        cur.execute("SELECT fs_training_columns(%s::regclass, %s::text[], %s, %s)",
                    (spine, list(features), spine_time, full_names))
        cols = cur.fetchone()[0]
        q = sql.SQL("SELECT * FROM fs_point_in_time_join({}, {}::text[], {}, {}, {}) AS t(").format(
            spine, list(features), spine_time, full_names, as_of_created).as_string(conn)
    return q + cols + ")" + (f" ORDER BY {order_by}" if order_by else "")
