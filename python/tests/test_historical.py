"""get_historical_features against fs_point_in_time_join run in SQL on the same spine."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import psycopg
import pytest

from feature_store import FeatureStore, FeatureStoreError
from helpers import frame_rows, join_sql, py, sql_columns, sql_rows

UTC = dt.timezone.utc

TYPES_SQL = r"""
CREATE TABLE typed_hist (
    user_id bigint, merchant text, ts timestamptz, created timestamptz,
    f_bool boolean, f_int2 smallint, f_int8 bigint, f_float4 real, f_float8 float8, f_num numeric(12,4),
    f_text text, f_varchar varchar(20), f_date date, f_tsz timestamptz, f_ts timestamp, f_json jsonb, f_arr float8[]);
INSERT INTO typed_hist VALUES
 (1, 'a', '2026-01-01 10:00+00', NULL, true, 7, 9007199254740993, 1.5, 0.1, 12.3456, 'x,"y"' || E'\n' || 'z', '', '2025-12-31',
  '2026-01-01 09:00:00.123456+00', '2026-01-01 08:00', '{"k": [1, 2]}', '{1.5,2}'),
 (1, 'a', '2026-01-02 10:00+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (2, 'b', '2026-01-01 10:00+00', NULL, false, -32768, -9223372036854775808, 'Infinity', '-Infinity', -0.0001, 'NA', 'null', 'infinity',
  '1999-12-31 23:59:59.999999+00', '2000-01-01 00:00', '"s"', '{}'),
 (2, 'c', '2026-01-01 10:00+00', NULL, true, 32767, 9223372036854775807, 3.4028235e38, 1e-300, 99999999.9999, E'tab\there', 'back\slash', '1970-01-01',
  '1970-01-01 00:00+00', '1969-12-31 23:59:59.5', 'null', NULL),
 (3, 'a', '2026-01-01 10:00+00', NULL, true, 1, 1, 1, 'NaN', 0, 'é ü 漢字', 'x', '2026-01-01', '2262-01-01 00:00+00', NULL, '{}', '{NULL}');
SELECT fs_register_entity('user_merchant', ARRAY['user_id', 'merchant']);
SELECT fs_register_view('typed', 'typed_hist', entity => 'user_merchant', event_time => 'ts', created_time => 'created');
CREATE TABLE typed_spine (row_id int, user_id bigint, merchant text, ts timestamptz);
INSERT INTO typed_spine VALUES
 (1, 1, 'a', '2026-01-01 12:00+00'), (2, 1, 'a', '2026-01-03 00:00+00'), (3, 2, 'b', '2026-01-05 00:00+00'),
 (4, 2, 'c', '2026-01-01 10:00+00'), (5, 3, 'a', '2026-01-01 09:59:59.999999+00'), (6, 3, 'a', '2026-01-01 10:00+00'),
 (7, NULL, 'a', '2026-01-05 00:00+00'), (8, 1, NULL, '2026-01-05 00:00+00'), (9, 1, 'a', NULL), (10, 4, 'zz', '2026-01-05 00:00+00');
"""


@pytest.fixture(scope="module")
def typed(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(TYPES_SQL)
    return db


def spine_frame(conn: psycopg.Connection, table: str, order: str) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {table} ORDER BY {order}")
        cols = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=cols)


def assert_same_as_sql(conn, out: pd.DataFrame, sql: str):
    cols = sql_columns(conn, sql)
    assert list(out.columns) == cols
    assert frame_rows(out, cols) == sql_rows(conn, sql)


def test_dataframe_spine_equals_sql_join(store: FeatureStore, conn):
    spine = spine_frame(conn, "ride_requests", "request_id")
    spine["event_timestamp"] = pd.to_datetime(spine["event_timestamp"], utc=True)
    for full in (False, True):
        for aoc in (False, True):
            feats = ["ride_model", "customer_profile:lifetime_trips"]
            out = store.get_historical_features(spine, feats, full_feature_names=full, as_of_created=aoc)
            assert_same_as_sql(conn, out, join_sql(conn, "ride_requests", feats, full_names=full,
                                                    as_of_created=aoc, order_by="request_id"))


def test_query_spine_equals_sql_join(store: FeatureStore, conn):
    feats = ["driver_stats:*", "customer_profile:current_balance"]
    out = store.get_historical_features("SELECT * FROM ride_requests ORDER BY request_id DESC", feats)
    expected = join_sql(conn, "ride_requests", feats, order_by="request_id DESC")
    assert_same_as_sql(conn, out, expected)
    assert out["request_id"].tolist() == [5, 4, 3, 2, 1]  # the query's order


def test_every_type_equals_sql(typed: str, conn):
    spine = spine_frame(conn, "typed_spine", "row_id")
    spine["ts"] = pd.to_datetime(spine["ts"], utc=True)
    with FeatureStore(typed, progress=False) as s:
        out = s.get_historical_features(spine, ["typed:*"], timestamp_column="ts")
    expected = join_sql(conn, "typed_spine", ["typed:*"], spine_time="ts", order_by="row_id")
    cols = sql_columns(conn, expected)
    # Infinite dates and timestamps arrive as NaT (pandas has no infinity).
    oracle = "SELECT " + ", ".join("CASE WHEN isfinite(f_date) THEN f_date END" if c == "f_date" else f'"{c}"'
                                   for c in cols) + f" FROM ({expected}) j ORDER BY row_id"
    got, want = frame_rows(out, cols), sql_rows(conn, oracle)
    assert len(got) == len(want) == 10
    for g, w in zip(got, want):
        for c, gv, wv in zip(cols, g, w):
            if c == "f_float4" and gv is not None and wv is not None:
                assert np.float32(gv) == np.float32(wv), (c, gv, wv)
                continue
            assert gv == wv or (gv is None and wv is None), (c, gv, wv)
    dtypes = out.dtypes.astype(str).to_dict()
    assert dtypes["f_bool"] == "boolean"
    assert dtypes["f_int2"] == "Int16" and dtypes["f_int8"] == "Int64"
    assert dtypes["f_float4"] == "float32" and dtypes["f_float8"] == "float64" and dtypes["f_num"] == "float64"
    assert dtypes["f_tsz"] == "datetime64[ns, UTC]" and dtypes["f_ts"] == "datetime64[ns]"
    assert dtypes["f_date"] == "datetime64[ns]"
    assert dtypes["f_text"] == "object"
    # Spot checks of values that a careless transfer breaks.
    assert out.loc[0, "f_text"] == 'x,"y"\nz' and out.loc[0, "f_varchar"] == ""
    assert out.loc[0, "f_int8"] == 9007199254740993  # not rounded through float
    assert out.loc[2, "f_int8"] == -9223372036854775808
    assert out.loc[2, "f_text"] == "NA" and out.loc[2, "f_varchar"] == "null"
    assert out.loc[2, "f_float4"] == np.inf and out.loc[2, "f_float8"] == -np.inf
    assert out.loc[0, "f_tsz"] == pd.Timestamp("2026-01-01 09:00:00.123456", tz="UTC")
    assert out.loc[3, "f_ts"] == pd.Timestamp("1969-12-31 23:59:59.5")
    assert out.loc[0, "f_json"] == {"k": [1, 2]} and out.loc[0, "f_arr"] == [1.5, 2]
    assert out.loc[1, "f_bool"] is pd.NA and out.loc[1, "f_int8"] is pd.NA and out.loc[1, "f_text"] is None
    assert pd.isna(out.loc[2, "f_date"])  # 'infinity'::date


def test_composite_keys_any_integer_dtype_and_kept_columns(typed: str, conn):
    base = spine_frame(conn, "typed_spine", "row_id").dropna(subset=["user_id"])
    base["ts"] = pd.to_datetime(base["ts"], utc=True)
    expected = None
    with FeatureStore(typed, progress=False) as s:
        for dtype in ("int64", "int32", "int16", "uint8", "Int64", "float64"):
            spine = base.copy()
            spine["user_id"] = spine["user_id"].astype(dtype)
            spine["extra"] = [{"a": i} for i in range(len(spine))]  # not uploaded, kept as is
            spine.index = [f"r{i}" for i in range(len(spine))]
            out = s.get_historical_features(spine, ["typed:f_int8", "typed:f_text"], timestamp_column="ts")
            assert list(out.index) == list(spine.index)
            assert out["user_id"].dtype == spine["user_id"].dtype
            assert out["extra"].tolist() == spine["extra"].tolist()
            got = frame_rows(out, ["row_id", "f_int8", "f_text"])
            if expected is None:
                expected = got
            assert got == expected, dtype
    want = sql_rows(conn, "SELECT row_id, f_int8, f_text FROM (" + join_sql(
        conn, "typed_spine", ["typed:f_int8", "typed:f_text"], spine_time="ts") + ") j WHERE user_id IS NOT NULL ORDER BY row_id")
    assert expected == want


def test_null_keys_and_times_give_null_features(store: FeatureStore):
    now = pd.Timestamp.now(tz="UTC").floor("h")
    spine = pd.DataFrame({"driver_id": pd.array([1001, None, 1001], dtype="Int64"),
                          "event_timestamp": [now, now, pd.NaT]})
    spine["event_timestamp"] = pd.to_datetime(spine["event_timestamp"], utc=True)
    out = store.get_historical_features(spine, ["driver_stats:conv_rate"])
    assert not pd.isna(out.loc[0, "conv_rate"])
    assert pd.isna(out.loc[1, "conv_rate"]) and pd.isna(out.loc[2, "conv_rate"])


def test_naive_times_are_utc_and_time_column_by_name(store: FeatureStore, conn):
    spine = spine_frame(conn, "ride_requests", "request_id").rename(columns={"event_timestamp": "asked_at"})
    aware = pd.to_datetime(spine["asked_at"], utc=True)
    a = store.get_historical_features(spine.assign(asked_at=aware), ["driver_stats:conv_rate"], timestamp_column="asked_at")
    b = store.get_historical_features(spine.assign(asked_at=aware.dt.tz_localize(None)), ["driver_stats:conv_rate"],
                                      timestamp_column="asked_at")
    c = store.get_historical_features(spine.assign(asked_at=aware.dt.tz_convert("Asia/Kolkata")), ["driver_stats:conv_rate"],
                                      timestamp_column="asked_at")
    assert frame_rows(a, ["conv_rate"]) == frame_rows(b, ["conv_rate"]) == frame_rows(c, ["conv_rate"])
    assert a["conv_rate"].notna().sum() == 3


def test_empty_spine(store: FeatureStore):
    spine = pd.DataFrame({"driver_id": pd.Series([], dtype="int64"),
                          "event_timestamp": pd.Series([], dtype="datetime64[ns, UTC]")})
    out = store.get_historical_features(spine, ["driver_stats:conv_rate", "driver_stats:avg_daily_trips"])
    assert len(out) == 0 and list(out.columns) == ["driver_id", "event_timestamp", "conv_rate", "avg_daily_trips"]
    assert str(out["avg_daily_trips"].dtype) == "Int32"


@pytest.mark.parametrize("features, spine_change, sqlstate", [
    (["nope:x"], None, "42704"),                      # unknown view (server)
    (["driver_stats:nope"], None, "42704"),           # unknown feature (server)
    (["driver_stats:conv_rate:x"], None, "22023"),    # malformed reference (server)
    (["driver_stats:conv_rate"], "drop_key", "42703"),  # spine without the key column (server)
    (["driver_stats:conv_rate"], "drop_time", "42703"),  # spine without the time column
    (["driver_stats:conv_rate"], "float_key", "22P02"),  # 1.5 is not a bigint (server)
    (["driver_stats:conv_rate"], "clash", "42702"),      # feature name = an entity_df column
])
def test_errors_carry_sqlstate(store: FeatureStore, features, spine_change, sqlstate):
    spine = pd.DataFrame({"driver_id": [1001, 1002], "event_timestamp": pd.Timestamp.now(tz="UTC")})
    if spine_change == "drop_key":
        spine = spine.drop(columns=["driver_id"])
    elif spine_change == "drop_time":
        spine = spine.drop(columns=["event_timestamp"])
    elif spine_change == "float_key":
        spine["driver_id"] = [1001.0, 1.5]
    elif spine_change == "clash":
        spine["conv_rate"] = 1.0
    with pytest.raises(FeatureStoreError) as e:
        store.get_historical_features(spine, features)
    assert e.value.sqlstate == sqlstate, e.value


def test_100k_row_entity_frame(store: FeatureStore, conn):
    rng = np.random.default_rng(7)
    n = 100_000
    now = pd.Timestamp.now(tz="UTC").floor("h")
    spine = pd.DataFrame({
        "row_id": np.arange(n),
        "driver_id": rng.integers(1000, 1007, n).astype("int32"),
        "customer_id": rng.choice(["c1", "c2", "c3", "c4"], n),
        "event_timestamp": now - pd.to_timedelta(rng.integers(0, 60 * 3600 * 10**6, n), unit="us"),
    })
    feats = ["driver_stats:conv_rate", "driver_stats:avg_daily_trips", "customer_profile:current_balance"]
    out = store.get_historical_features(spine, feats)
    # The same spine copied into a table independently (psycopg's own COPY row writer), joined in SQL.
    conn.execute("CREATE TEMP TABLE big_spine (row_id bigint, driver_id bigint, customer_id text, event_timestamp timestamptz)")
    with conn.cursor().copy("COPY big_spine FROM STDIN") as cp:
        for r in zip(spine.row_id.tolist(), spine.driver_id.tolist(), spine.customer_id.tolist(),
                     spine.event_timestamp.dt.to_pydatetime().tolist()):
            cp.write_row(r)
    want = sql_rows(conn, "SELECT row_id, conv_rate, avg_daily_trips, current_balance FROM (" +
                    join_sql(conn, "big_spine", feats) + ") j ORDER BY row_id")
    got = frame_rows(out, ["row_id", "conv_rate", "avg_daily_trips", "current_balance"])
    assert len(got) == n and got == want
    assert out["conv_rate"].isna().sum() > 0 and out["conv_rate"].notna().sum() > 0


EDGE_SQL = r"""
CREATE TABLE edge_hist (k bigint, ts timestamptz, t text, i4 int, i8 bigint, b boolean, n numeric(30,10),
                        f8 float8, tz timestamptz, d date);
INSERT INTO edge_hist VALUES
 (1, '2026-01-01', E'a\tb\nc\\d,"e"''f' || chr(13), 0, 0, false, 1234567890.0123456789, 0, '-infinity', '-infinity'),
 (2, '2026-01-01', '', NULL, -9223372036854775808, NULL, NULL, NULL, 'infinity', 'infinity'),
 (3, '2026-01-01', NULL, -2147483648, 9223372036854775807, true, -0.0000000001, '-0'::float8, '2000-01-01 00:00+00', '2000-01-01'),
 (4, '2026-01-01', 'ÿ þ ' || chr(255) || ' 漢字 😀', 2147483647, NULL, false, 0.1, 1e308, '1677-09-22 00:00+00', '1677-09-22'),
 (5, '2026-01-01', '\N', 1, 1, NULL, 'NaN', 'NaN', NULL, NULL),
 (6, '2026-01-01', 'NULL', NULL, NULL, true, 99999999999999999999.9999999999, 5e-324, '2262-04-11 23:47:16.854775+00', '2262-04-11');
SELECT fs_register_entity('edge', 'k');
SELECT fs_register_view('edge_v', 'edge_hist', entity => 'edge', event_time => 'ts');
CREATE TABLE edge_spine (row_id int, k bigint, ts timestamptz);
INSERT INTO edge_spine SELECT g, 1 + (g * 7) % 8, '2026-01-02' FROM generate_series(1, 40) g;
"""


@pytest.fixture(scope="module")
def edge(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(EDGE_SQL)
    return db


def test_transfer_edges_equal_sql(edge: str, conn):
    """Separators and markers of the transfer inside values, NULL patterns, extremes, NaN and
    -0.0, numeric precision (the nearest double, as float8 casts it), infinite and edge times."""
    spine = spine_frame(conn, "edge_spine", "row_id")
    spine["ts"] = pd.to_datetime(spine["ts"], utc=True)
    with FeatureStore(edge, progress=False) as s:
        out = s.get_historical_features(spine, ["edge_v:*"], timestamp_column="ts")
        via_query = s.get_historical_features("SELECT * FROM edge_spine ORDER BY row_id", ["edge_v:*"],
                                              timestamp_column="ts")
    expected = join_sql(conn, "edge_spine", ["edge_v:*"], spine_time="ts")
    # The oracle: the SQL join, with the documented conversions done in SQL (numeric through
    # float8, infinite times as NULL).
    oracle = ("SELECT row_id, t, i4, i8, b, n::float8, f8, CASE WHEN isfinite(tz) THEN tz END, "
              "CASE WHEN isfinite(d) THEN d END FROM (" + expected + ") j ORDER BY row_id")
    cols = ["row_id", "t", "i4", "i8", "b", "n", "f8", "tz", "d"]
    want = sql_rows(conn, oracle)
    assert len(want) == 40
    for got_frame in (out, via_query):
        got = frame_rows(got_frame, cols)
        assert got == want
    # What the tuple comparison cannot see: -0.0 kept, NaN vs NULL both NaN, dtypes.
    f8 = out.set_index("row_id")["f8"]
    assert str(out["i4"].dtype) == "Int32" and str(out["i8"].dtype) == "Int64" and str(out["b"].dtype) == "boolean"
    assert str(out["tz"].dtype) == "datetime64[ns, UTC]" and str(out["d"].dtype) == "datetime64[ns]"
    k = out.set_index("row_id")["k"]
    minus_zero = f8[k == 3]
    assert len(minus_zero) and all(np.signbit(v) and v == 0 for v in minus_zero)
    text = dict(zip(out["k"], out["t"]))
    assert text[1] == 'a\tb\nc\\d,"e"\'f\r' and text[2] == "" and text[3] is None
    assert text[4] == "ÿ þ ÿ 漢字 😀" and text[5] == "\\N" and text[6] == "NULL"
    assert set(out.loc[out["k"] == 7, "t"].tolist()) == {None}  # no history: every feature NULL


def test_text_only_and_no_rows(edge: str):
    spine = pd.DataFrame({"k": [4, 3, 9], "ts": pd.to_datetime(["2026-01-02"] * 3, utc=True)})
    with FeatureStore(edge, progress=False) as s:
        out = s.get_historical_features(spine, ["edge_v:t"], timestamp_column="ts")
        assert out["t"].tolist() == ["ÿ þ ÿ 漢字 😀", None, None]
        empty = s.get_historical_features(spine.iloc[:0], ["edge_v:t", "edge_v:b", "edge_v:tz"], timestamp_column="ts")
    assert len(empty) == 0 and str(empty["b"].dtype) == "boolean" and str(empty["tz"].dtype) == "datetime64[ns, UTC]"


def test_columnar_fetch_is_used_and_falls_back(edge: str, conn, monkeypatch):
    """Supported types come through fs_training_set_columns only (the aggregate path is not
    touched); a type wanted in its JSON form (an array) falls back to it, with the same rows."""
    import feature_store._transfer as transfer
    spine = spine_frame(conn, "edge_spine", "row_id")
    spine["ts"] = pd.to_datetime(spine["ts"], utc=True)
    real_select = transfer.select_to_frame
    calls = []

    def counting_select(*a, **kw):
        calls.append(1)
        return real_select(*a, **kw)

    monkeypatch.setattr(transfer, "select_to_frame", counting_select)
    with FeatureStore(edge, progress=False) as s:
        out = s.get_historical_features(spine, ["edge_v:*"], timestamp_column="ts")
        assert calls == [] and len(out) == 40
        with psycopg.connect(edge, autocommit=True) as c:
            c.execute("CREATE TABLE edge_arr (k bigint, ts timestamptz, a int[], t text)")
            c.execute("INSERT INTO edge_arr VALUES (1, '2026-01-01', '{1,NULL,3}', 'x'), (2, '2026-01-01', NULL, NULL)")
            c.execute("SELECT fs_register_view('edge_arr_v', 'edge_arr', entity => 'edge', event_time => 'ts')")
        arr = s.get_historical_features(spine, ["edge_arr_v:*"], timestamp_column="ts")
    assert calls == [1]
    got = dict(zip(arr["k"], zip(arr["a"], arr["t"])))
    assert got[1] == ([1, None, 3], "x") and got[2] == (None, None) and got[3] == (None, None)
