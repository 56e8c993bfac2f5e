"""Times the Python client's training-set path against the SQL join alone and pandas merge_asof.

Usage: python_training_set.py DSN   (run by bench/python_training_set.sh on bench/gen_data.sql data)

Methods, each the best of BENCH_REPEAT runs after BENCH_WARMUP untimed ones (default 1: the
first runs of every method were slower in each run, the backend's memory and caches still cold):
  SQL join alone      CREATE TEMP TABLE ... AS SELECT ... FROM fs_point_in_time_join('spine', ...)
                      (the spine already in the database, as bench/pit_join.sh measures it)
  Python client       FeatureStore.get_historical_features(spine DataFrame) -> DataFrame:
                      upload by COPY + the join + fetch + dtypes
  pandas merge_asof   the same DataFrame spine against the history DataFrame (loaded beforehand,
                      not timed): sorts included, result back in spine order, TTL as tolerance
All results are compared value for value (the merge_asof one with the section-2 tie order:
history sorted by (event_ts, created_ts), so the last of equal event times has the greatest
created time).
"""

import os
import sys
import time

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from feature_store import FeatureStore
from feature_store import _transfer as tx

dsn = sys.argv[1]
repeat = int(os.environ.get("BENCH_REPEAT", "3"))
warmup = int(os.environ.get("BENCH_WARMUP", "1"))
FEATURES = ["f_float1", "f_float2", "f_int1", "f_text1"]


def best(fn):
    times, out = [], None
    for _ in range(warmup):
        fn()
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times, out


with psycopg.connect(dsn, autocommit=True) as conn:
    conn.execute("DROP EXTENSION IF EXISTS feature_store CASCADE")
    conn.execute("CREATE EXTENSION feature_store")
    conn.execute("SELECT fs_register_entity('bench_user', 'user_id')")
    conn.execute("SELECT fs_register_view('user_stats', 'user_stats_history', 'bench_user', event_time => 'event_ts', "
                 "created_time => 'created_ts', ttl => '30 days', online => false)")
    conn.execute("VACUUM (FREEZE) user_stats_history, spine")

    def load(query):
        cols = tx.describe(conn, sql.SQL(query))
        return tx.select_to_frame(conn, sql.SQL(query), cols)

    t0 = time.perf_counter()
    spine = load("SELECT row_id, user_id, ts FROM spine ORDER BY row_id")
    history = load("SELECT user_id, event_ts, created_ts, f_float1, f_float2, f_int1, f_text1 FROM user_stats_history")
    print(f"loaded the spine ({len(spine):,} rows) and the history ({len(history):,} rows) into pandas "
          f"in {time.perf_counter() - t0:.1f} s (not timed)")

    coldefs = "row_id bigint, user_id bigint, ts timestamptz, f_float1 float8, f_float2 float8, f_int1 bigint, f_text1 text"

    def sql_join():
        conn.execute("DROP TABLE IF EXISTS r_sql")
        conn.execute("CREATE TEMP TABLE r_sql AS SELECT row_id, f_float1, f_float2, f_int1, f_text1 "
                     "FROM fs_point_in_time_join('spine', '{user_stats:*}', spine_time => 'ts') AS t(" + coldefs + ")")
    t_sql, all_sql, _ = best(sql_join)
    sql_result = load("SELECT row_id, f_float1, f_float2, f_int1, f_text1 FROM r_sql ORDER BY row_id")

store = FeatureStore(dsn, progress=False)
t_py, all_py, py_result = best(lambda: store.get_historical_features(spine, ["user_stats:*"], timestamp_column="ts"))


def merge_asof():
    left = spine.sort_values("ts", kind="stable")
    right = history.sort_values(["event_ts", "created_ts"], kind="stable")
    m = pd.merge_asof(left, right, left_on="ts", right_on="event_ts", by="user_id",
                      tolerance=pd.Timedelta(days=30), direction="backward", allow_exact_matches=True)
    return m.sort_values("row_id", kind="stable").reset_index(drop=True)
t_pd, all_pd, pd_result = best(merge_asof)


def same(a, b):
    """Value for value: missing in both, or equal (floats exactly)."""
    if len(a) != len(b):
        return False
    for c in ["row_id"] + FEATURES:
        x, y = a[c].reset_index(drop=True), b[c].reset_index(drop=True)
        nx, ny = x.isna().to_numpy(), y.isna().to_numpy()
        if not np.array_equal(nx, ny):
            return False
        xv, yv = x[~nx].to_numpy(dtype=object), y[~ny].to_numpy(dtype=object)
        if not all(p == q for p, q in zip(xv.tolist(), yv.tolist())):
            return False
    return True


ok_py = same(py_result, sql_result)
ok_pd = same(pd_result, sql_result)
matched = int(py_result["f_int1"].notna().sum())
print(f"spine {len(spine):,} rows, {matched:,} with features; features {', '.join(FEATURES)}")
print(f"{'method':58} {'best':>8} {'x SQL':>6}  runs (s)           same result")
for name, t, runs, ok in [
        ("SQL join alone (fs_point_in_time_join -> temp table)", t_sql, all_sql, "-"),
        ("Python client: get_historical_features(DataFrame)", t_py, all_py, "yes" if ok_py else "NO"),
        ("pandas merge_asof (sorts included, spine order restored)", t_pd, all_pd, "yes" if ok_pd else "NO")]:
    print(f"{name:58} {t:7.2f}s {t / t_sql:6.2f}  {' '.join(f'{x:.2f}' for x in runs):18} {ok}")
print(f"Python client / SQL join alone: {t_py / t_sql:.2f}x (target <= 1.5x); "
      f"pandas merge_asof / Python client: {t_pd / t_py:.2f}x")
store.close()
