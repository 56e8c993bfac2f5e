"""get_online_features, materialize, materialize_incremental and push against their SQL."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import psycopg
import pytest

from feature_store import FeatureStore, FeatureStoreError
from helpers import py, sql_rows

UTC = dt.timezone.utc


@pytest.fixture(scope="module", autouse=True)
def materialized(db: str):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("SELECT fs_materialize('driver_stats', now() - interval '3 days', now())")
        c.execute("SELECT fs_materialize('customer_profile', now() - interval '3 days', now())")
        # A composite-key view with an expired entity (TTL 1 hour, one row 2 hours old).
        c.execute("""
            CREATE TABLE merchant_stats (user_id int, merchant text, ts timestamptz, spend numeric(8,2), n bigint, flag boolean);
            INSERT INTO merchant_stats VALUES (1, 'a', now() - interval '5 minutes', 10.5, 3, true),
                                              (1, 'b', now() - interval '2 hours', 7.25, NULL, false),
                                              (2, 'a', now() - interval '1 minute', NULL, 9007199254740993, NULL);
            SELECT fs_register_entity('user_merchant', ARRAY['user_id', 'merchant']);
            SELECT fs_register_view('merchant_stats', 'merchant_stats', entity => 'user_merchant', event_time => 'ts', ttl => '1 hour');
            SELECT fs_materialize('merchant_stats', now() - interval '1 day', now() - interval '90 minutes');
            SELECT fs_materialize('merchant_stats', now() - interval '1 day', now());
        """)


def sql_batch(conn, entities, view):
    rows = sql_rows(conn, "SELECT features FROM fs_online_batch(%s::fs_entity[], %s)", (entities, view))
    return [r[0] for r in rows]


def expected_values(conn, entities, view, feature, view_key=None):
    out = []
    for f in sql_batch(conn, entities, view):
        v = None if f is None or f.get(view_key or view.split("@")[0]) is None else f[view_key or view.split("@")[0]].get(feature)
        out.append(v)
    return out


def test_online_equals_fs_online_batch(store: FeatureStore, conn):
    ids = [1001, 1002, 9999, 1005, 1001]
    resp = store.get_online_features(["driver_stats:conv_rate", "driver_stats:avg_daily_trips"],
                                     [{"driver_id": i} for i in ids])
    d = resp.to_dict()
    ents = [f"driver:{i}" for i in ids]
    assert d["driver_id"] == ids
    assert d["conv_rate"] == expected_values(conn, ents, "driver_stats", "conv_rate")
    assert d["avg_daily_trips"] == expected_values(conn, ents, "driver_stats", "avg_daily_trips")
    assert d["conv_rate"][2] is None and d["conv_rate"][0] is not None
    df = resp.to_df()
    assert str(df["avg_daily_trips"].dtype) == "Int32" and str(df["conv_rate"].dtype) == "float64"
    assert df["avg_daily_trips"].isna().tolist() == [False, False, True, False, False]


def test_service_with_two_entities_and_full_names(store: FeatureStore, conn):
    rows = [{"driver_id": 1001, "customer_id": "c1"}, {"driver_id": 1003, "customer_id": "c9"}]
    d = store.get_online_features("ride_model", rows, full_feature_names=True).to_dict()
    assert list(d) == ["driver_id", "customer_id", "driver_stats__conv_rate", "driver_stats__acc_rate",
                       "driver_stats__avg_daily_trips", "customer_profile__current_balance"]
    assert d["driver_stats__acc_rate"] == expected_values(conn, ["driver:1001", "driver:1003"], "driver_stats", "acc_rate")
    bal = expected_values(conn, ["customer:c1", "customer:c9"], "customer_profile", "current_balance")
    assert d["customer_profile__current_balance"] == [float(b) if b is not None else None for b in bal]
    assert bal[0] is not None and bal[1] is None


def test_composite_key_expired_and_dataframe_rows(store: FeatureStore, conn):
    rows = pd.DataFrame({"user_id": np.array([1, 1, 2, 3], dtype="int16"), "merchant": ["a", "b", "a", "a"]})
    resp = store.get_online_features(["merchant_stats:*"], rows)
    d = resp.to_dict()
    ents = ["user_merchant:(1,a)", "user_merchant:(1,b)", "user_merchant:(2,a)", "user_merchant:(3,a)"]
    raw = sql_batch(conn, ents, "merchant_stats")
    assert raw[1] == {"merchant_stats": None}  # online, but older than the TTL: expired
    for f in ("spend", "n", "flag"):
        assert d[f] == expected_values(conn, ents, "merchant_stats", f), f
    assert d["n"][2] == 9007199254740993 and d["spend"][1] is None and d["flag"][0] is True
    df = resp.to_df()
    assert str(df["n"].dtype) == "Int64" and str(df["flag"].dtype) == "boolean"


def test_null_key_gives_none(store: FeatureStore):
    d = store.get_online_features(["driver_stats:conv_rate"], [{"driver_id": None}, {"driver_id": 1001}]).to_dict()
    assert d["conv_rate"][0] is None and d["conv_rate"][1] is not None


def test_pinned_version(store: FeatureStore, conn):
    d = store.get_online_features(["driver_stats@1:conv_rate"], [{"driver_id": 1002}]).to_dict()
    assert d["conv_rate"] == expected_values(conn, ["driver:1002"], "driver_stats@1", "conv_rate", "driver_stats")


@pytest.mark.parametrize("features, rows, sqlstate", [
    (["nope:x"], [{"driver_id": 1}], "42704"),
    (["nope"], [{"driver_id": 1}], "42704"),
    (["driver_stats:nope"], [{"driver_id": 1}], "42704"),
    (["driver_stats@9:conv_rate"], [{"driver_id": 1}], "42704"),
    (["driver_stats:"], [{"driver_id": 1}], "22023"),
    (["driver_stats:conv_rate", "driver_stats:*"], [{"driver_id": 1}], "42710"),
    (["driver_stats:conv_rate"], [{"customer_id": "c1"}], "42703"),
    (["driver_stats:conv_rate"], [{"driver_id": "abc"}], "22P02"),  # the key type's input error (server)
])
def test_online_errors_carry_sqlstate(store: FeatureStore, features, rows, sqlstate):
    with pytest.raises(FeatureStoreError) as e:
        store.get_online_features(features, rows)
    assert e.value.sqlstate == sqlstate, e.value


def test_offline_view_error_from_server(store: FeatureStore, conn):
    conn.execute("CREATE TABLE off_hist (driver_id bigint, event_timestamp timestamptz, x int)")
    conn.execute("SELECT fs_register_view('off_view', 'off_hist', entity => 'driver', online => false)")
    with pytest.raises(FeatureStoreError) as e:
        store.get_online_features(["off_view:x"], [{"driver_id": 1}])
    assert e.value.sqlstate == "55000"
    with pytest.raises(FeatureStoreError) as e:
        store.materialize(dt.datetime(2020, 1, 1), dt.datetime(2030, 1, 1), views=["off_view"])
    assert e.value.sqlstate == "55000"


def test_materialize_equals_sql(store: FeatureStore, conn):
    conn.execute("CREATE TABLE m_hist (driver_id bigint, event_timestamp timestamptz, created timestamptz, v float8)")
    conn.execute("INSERT INTO m_hist VALUES (1, '2026-01-01', '2026-01-01', 1.5), (1, '2026-01-02', '2026-01-02', 2.5), "
                 "(2, '2026-01-01', '2026-01-03', 3.5)")
    conn.execute("SELECT fs_register_view('m_view', 'm_hist', entity => 'driver', created_time => 'created')")
    conn.execute("SELECT fs_register_view('m_view2', 'm_hist', entity => 'driver', created_time => 'created')")
    start, end = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 1, 12, tzinfo=UTC)
    got = store.materialize(start, end, views=["m_view"])
    want = sql_rows(conn, "SELECT fs_materialize('m_view2', %s, %s)", (start, end))[0][0]
    assert got == {"m_view": want} and want == 2
    assert store.materialize(start, end, views=["m_view"]) == {"m_view": 0}  # idempotent, as the SQL
    online = store.get_online_features(["m_view:v"], [{"driver_id": 1}, {"driver_id": 2}]).to_dict()
    assert online["v"] == [1.5, 3.5]
    got = store.materialize_incremental(views=["m_view"])
    want = sql_rows(conn, "SELECT fs_materialize_incremental('m_view2')")[0][0]
    assert got == {"m_view": want}
    assert store.get_online_features(["m_view:v"], [{"driver_id": 1}]).to_dict()["v"] == [2.5]
    # Default: every online view, each with the count its SQL call returns.
    allv = store.materialize(start, end)
    assert set(allv) == {r[0] for r in sql_rows(conn, "SELECT name FROM fs_views WHERE is_latest AND online_mode <> 'off'")}


def test_push_copies_into_the_source(store: FeatureStore, conn):
    conn.execute("CREATE TABLE p_hist (driver_id bigint, event_timestamp timestamptz, note text, n int, "
                 "f float8, ok boolean, doc jsonb, loaded_at timestamptz DEFAULT now())")
    conn.execute("SELECT fs_register_view('p_view', 'p_hist', entity => 'driver', "
                 "features => ARRAY['note', 'n', 'f', 'ok', 'doc'])")
    conn.execute("SELECT fs_set_online_mode('p_view', 'stream')")
    t = pd.Timestamp("2026-01-01 10:00:00.000001", tz="UTC")
    df = pd.DataFrame({"driver_id": np.array([1, 2, 3], dtype="int32"),
                       "event_timestamp": [t, t.tz_convert("Europe/Paris"), pd.NaT],
                       "note": ["tab\there\nnewline \\N back\\slash", "", None],
                       "n": pd.array([1, None, -5], dtype="Int64"),
                       "f": [0.1, np.nan, 1e-300],
                       "ok": [True, False, None],
                       "doc": [{"a": [1, "x"]}, None, [1]]})
    assert store.push("p_view", df) == 3
    rows = sql_rows(conn, "SELECT driver_id, event_timestamp, note, n, f, ok, doc FROM p_hist ORDER BY driver_id")
    assert rows == [
        (1, t.to_pydatetime(), "tab\there\nnewline \\N back\\slash", 1, 0.1, True, {"a": [1, "x"]}),
        (2, t.to_pydatetime(), "", None, None, False, None),
        (3, None, None, -5, 1e-300, None, [1]),
    ]
    # Stream mode: pushed rows are served at once.
    assert store.get_online_features(["p_view:n"], [{"driver_id": 1}]).to_dict()["n"] == [1]
    with pytest.raises(FeatureStoreError) as e:
        store.push("p_view", pd.DataFrame({"driver_id": [1], "nope": [1]}))
    assert e.value.sqlstate == "42703"
    with pytest.raises(FeatureStoreError) as e:
        store.push("no_view", df)
    assert e.value.sqlstate == "42704"
    with pytest.raises(FeatureStoreError) as e:
        store.push("p_view", pd.DataFrame({"driver_id": ["x"]}))
    assert e.value.sqlstate == "22P02"
    assert sql_rows(conn, "SELECT count(*) FROM p_hist")[0][0] == 3  # failed pushes wrote nothing


def test_catalog_lists(store: FeatureStore, conn):
    assert [e.name for e in store.list_entities()] == [r[0] for r in sql_rows(conn, "SELECT entity FROM fs_entities ORDER BY 1")]
    views = store.list_views()
    assert [v.name for v in views] == [r[0] for r in sql_rows(conn, "SELECT name FROM fs_views WHERE is_latest ORDER BY 1")]
    ds = store.get_view("driver_stats")
    assert list(ds.features) == ["conv_rate", "acc_rate", "avg_daily_trips"] and ds.ttl == dt.timedelta(days=1)
    assert [s.features for s in store.list_services()] == [r[0] for r in sql_rows(
        conn, "SELECT features FROM fs_services WHERE is_latest ORDER BY name")]
