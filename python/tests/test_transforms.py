"""Transforms (on-demand features) through the client: get_online_features with request data and
get_historical_features with request columns, each against the expression evaluated in Python on
the raw values, and training equal to serving for the same entities and requests at now()."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import psycopg
import pytest

from feature_store import FeatureStore, FeatureStoreError
from helpers import py, sql_rows

UTC = dt.timezone.utc

SETUP_SQL = """
SELECT fs_materialize('driver_stats', now() - interval '3 days', now());
SELECT fs_materialize('customer_profile', now() - interval '3 days', now());
SELECT fs_register_transform('spend_share', 'amount / nullif(current_balance, 0)',
  request => '{"amount": "float8"}', inputs => ARRAY['customer_profile:current_balance'], returns => 'float8');
SELECT fs_register_transform('trips_label', $$CASE WHEN lifetime_trips >= threshold THEN 'many' ELSE 'few' END$$,
  request => '{"threshold": "int"}', inputs => ARRAY['customer_profile:lifetime_trips'], returns => 'text');
SELECT fs_register_transform('driver_score', 'conv_rate * weight + acc_rate',
  request => '{"weight": "float8"}', inputs => ARRAY['driver_stats:conv_rate', 'driver_stats:acc_rate']);
SELECT fs_register_transform('answer', '40 + 2');
SELECT fs_register_transform('doubled', 'amount * 2', request => '{"amount": "numeric"}');
SELECT fs_register_transform('doubled', 'amount * 3', request => '{"amount": "numeric"}');
SELECT fs_register_service('ride_scored', ARRAY['driver_stats:conv_rate', 'spend_share',
  'customer_profile:lifetime_trips', 'driver_score']);
"""


@pytest.fixture(scope="module", autouse=True)
def transforms(db: str):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SETUP_SQL)


# -- the oracle: the raw source rows and the expressions written in Python ----------------------

def latest_customer(conn, cid):
    """(current_balance, lifetime_trips) of the customer's newest source row (TTL 2 days), or Nones."""
    rows = sql_rows(conn, "SELECT current_balance, lifetime_trips FROM customer_daily_profile "
                          "WHERE customer_id = %s AND event_timestamp > now() - interval '2 days' "
                          "ORDER BY event_timestamp DESC LIMIT 1", (cid,))
    return rows[0] if rows else (None, None)


def latest_driver(conn, did):
    rows = sql_rows(conn, "SELECT conv_rate, acc_rate FROM driver_hourly_stats "
                          "WHERE driver_id = %s AND event_timestamp > now() - interval '1 day' "
                          "ORDER BY event_timestamp DESC, created DESC LIMIT 1", (did,))
    return rows[0] if rows else (None, None)


def missing(v):
    return v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA


def spend_share(amount, balance):
    if missing(amount) or balance is None or balance == 0:
        return None
    return float(amount) / float(balance)


def trips_label(trips, threshold):
    # CASE WHEN NULL THEN ... ELSE 'few': an unknown comparison falls to ELSE, as in SQL
    if trips is None or missing(threshold):
        return "few"
    return "many" if trips >= threshold else "few"


def driver_score(conv, acc, weight):
    if conv is None or acc is None or missing(weight):
        return None
    return conv * float(weight) + acc


CUSTOMERS = ["c1", "c2", "c3", "zz", None, "c1", "c2"]
AMOUNTS = [5.0, 12.5, None, 3.0, 4.0, 0.0, -7.25]
THRESHOLDS = [10, 40, 0, 5, 5, None, 1000]


def test_online_transform_equals_python_oracle(store: FeatureStore, conn):
    rows = [{"customer_id": c} for c in CUSTOMERS]
    requests = [{"amount": a, "threshold": t} for a, t in zip(AMOUNTS, THRESHOLDS)]
    expected_share = [None if c is None else spend_share(a, latest_customer(conn, c)[0])
                      for c, a in zip(CUSTOMERS, AMOUNTS)]
    expected_label = [None if c is None else trips_label(latest_customer(conn, c)[1], t)
                      for c, t in zip(CUSTOMERS, THRESHOLDS)]
    assert expected_share[0] is not None and expected_share[3] is None and expected_label[3] == "few"
    assert "many" in expected_label and "few" in expected_label[:3]
    # Every form of request data gives the same answer.
    forms = {
        "rows": dict(request_data=requests),
        "columns": dict(request_data={"amount": AMOUNTS, "threshold": THRESHOLDS}),
        "frame": dict(request_data=pd.DataFrame({"amount": AMOUNTS, "threshold": pd.array(THRESHOLDS, dtype="Int64")})),
        "in entity rows": dict(),
    }
    for label, kw in forms.items():
        entity_rows = [dict(r, **q) for r, q in zip(rows, requests)] if not kw else rows
        resp = store.get_online_features(["spend_share", "trips_label"], entity_rows, **kw)
        d = resp.to_dict()
        assert list(d) == ["customer_id", "spend_share", "trips_label"], label
        assert d["customer_id"] == CUSTOMERS
        assert d["spend_share"] == expected_share, label
        assert d["trips_label"] == expected_label, label
    df = resp.to_df()
    assert str(df["spend_share"].dtype) == "float64" and df["trips_label"].dtype == object
    # request_data wins over an entity-row column of the same name
    d = store.get_online_features("spend_share", [{"customer_id": "c1", "amount": 1.0}],
                                  request_data=[{"amount": 2.0}]).to_dict()
    assert d["spend_share"] == [spend_share(2.0, latest_customer(conn, "c1")[0])]


def test_online_service_with_transforms(store: FeatureStore, conn):
    drivers = [1001, 1002, 9999, 1005, None]
    customers = ["c1", "zz", "c2", None, "c3"]
    amounts = [10.0, 1.0, 2.0, 3.0, 20.0]
    weights = [0.5, 2.0, 1.0, -1.0, 3.0]
    rows = [{"driver_id": d, "customer_id": c, "amount": a, "weight": w}
            for d, c, a, w in zip(drivers, customers, amounts, weights)]
    for full in (False, True):
        d = store.get_online_features("ride_scored", rows, full_feature_names=full).to_dict()
        conv_col = "driver_stats__conv_rate" if full else "conv_rate"
        trips_col = "customer_profile__lifetime_trips" if full else "lifetime_trips"
        # the service's order, transforms in their places, named after themselves
        assert list(d) == ["driver_id", "customer_id", conv_col, "spend_share", trips_col, "driver_score"]
        assert d[conv_col] == [None if x is None else latest_driver(conn, x)[0] for x in drivers]
        assert d[trips_col] == [None if c is None else latest_customer(conn, c)[1] for c in customers]
        assert d["spend_share"] == [None if c is None else spend_share(a, latest_customer(conn, c)[0])
                                    for c, a in zip(customers, amounts)]
        assert d["driver_score"] == [None if x is None else driver_score(*latest_driver(conn, x), w)
                                     for x, w in zip(drivers, weights)]
        assert d["driver_score"][0] is not None and d["driver_score"][2] is None


def test_online_transform_without_inputs_and_versions(store: FeatureStore, conn):
    rows = [{"customer_id": "c1", "amount": 1.5}, {"customer_id": "zz", "amount": -2}, {"customer_id": None, "amount": 1}]
    d = store.get_online_features(["customer_profile:lifetime_trips", "doubled@1", "answer"], rows).to_dict()
    assert list(d) == ["customer_id", "lifetime_trips", "doubled", "answer"]
    assert d["doubled"] == [3.0, -4.0, None] and d["answer"] == [42, 42, None]
    d = store.get_online_features(["doubled"], rows).to_dict()  # the latest version
    assert d["doubled"] == [4.5, -6.0, None]
    # alone: served with an entity whose keys the rows carry
    d = store.get_online_features("answer", [{"driver_id": 1001}, {"driver_id": 5}]).to_dict()
    assert d == {"driver_id": [1001, 5], "answer": [42, 42]}


@pytest.mark.parametrize("features, rows, request_data, sqlstate", [
    (["spend_share"], [{"customer_id": "c1"}], None, "22023"),                     # no amount anywhere
    (["spend_share"], [{"customer_id": "c1"}], [{"amount": 1}, {"amount": 2}], "22023"),  # one request per row
    (["spend_share"], [{"customer_id": "c1"}], {"amount": [1, 2]}, "22023"),
    (["spend_share"], [{"customer_id": "c1"}], [{"amount": "abc"}], "22P02"),       # the server's input error
    (["spend_share"], [{"amount": 1}], None, "42703"),                              # no key
    (["no_such_transform"], [{"customer_id": "c1"}], None, "42704"),
    (["spend_share", "spend_share"], [{"customer_id": "c1", "amount": 1}], None, "42710"),
    (["doubled@1", "doubled@2"], [{"customer_id": "c1", "amount": 1}], None, "42710"),
    (["doubled@9"], [{"customer_id": "c1", "amount": 1}], None, "42704"),
])
def test_online_transform_errors(store: FeatureStore, features, rows, request_data, sqlstate):
    with pytest.raises(FeatureStoreError) as e:
        store.get_online_features(features, rows, request_data=request_data)
    assert e.value.sqlstate == sqlstate, e.value


def spine_with_requests(conn) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute("SELECT request_id, driver_id, customer_id, event_timestamp FROM ride_requests ORDER BY request_id")
        df = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    df["event_timestamp"] = pd.to_datetime(df["event_timestamp"], utc=True)
    df["amount"] = [7.5, np.nan, 12.0, 3.0, 1.0]
    df["threshold"] = pd.array([0, 25, None, 5, 1], dtype="Int64")
    df["weight"] = [0.25, 1.0, -2.0, 1.0, 4.0]
    return df


def test_historical_transforms_equal_python_oracle(store: FeatureStore, conn):
    spine = spine_with_requests(conn)
    raw_feats = ["customer_profile:current_balance", "customer_profile:lifetime_trips",
                 "driver_stats:conv_rate", "driver_stats:acc_rate"]
    raw = store.get_historical_features(spine, raw_feats)
    out = store.get_historical_features(spine, ["spend_share", "trips_label", "driver_score"] + raw_feats)
    assert list(out.columns) == list(spine.columns) + ["spend_share", "trips_label", "driver_score",
                                                       "current_balance", "lifetime_trips", "conv_rate", "acc_rate"]
    pd.testing.assert_frame_equal(out[raw.columns], raw)  # the spine and the features as without transforms
    rows = raw.to_dict("records")
    assert [py(v) for v in out["spend_share"]] == [spend_share(r["amount"], py(r["current_balance"])) for r in rows]
    assert [py(v) for v in out["trips_label"]] == [trips_label(py(r["lifetime_trips"]), py(r["threshold"])) for r in rows]
    assert [py(v) for v in out["driver_score"]] == [
        driver_score(py(r["conv_rate"]), py(r["acc_rate"]), r["weight"]) for r in rows]
    assert out["spend_share"].notna().sum() >= 1 and out["driver_score"].notna().sum() >= 1
    assert str(out["spend_share"].dtype) == "float64" and out["trips_label"].dtype == object
    # The same spine as a query: the same values (request columns carried by the query).
    q = ("SELECT r.*, v.amount, v.threshold, v.weight FROM ride_requests r JOIN (VALUES "
         "(1, 7.5::float8, 0, 0.25::float8), (2, NULL, 25, 1), (3, 12, NULL, -2), (4, 3, 5, 1), (5, 1, 1, 4)) "
         "v(request_id, amount, threshold, weight) USING (request_id) ORDER BY request_id")
    from_query = store.get_historical_features(q, ["spend_share", "trips_label", "driver_score"])
    for c in ("spend_share", "trips_label", "driver_score"):
        assert [py(v) for v in from_query[c]] == [py(v) for v in out[c]], c


def test_historical_missing_request_column(store: FeatureStore, conn):
    spine = spine_with_requests(conn).drop(columns=["amount"])
    with pytest.raises(FeatureStoreError) as e:
        store.get_historical_features(spine, ["spend_share"])
    assert e.value.sqlstate == "42703" and "amount" in e.value.message


def test_training_equals_serving_at_now(store: FeatureStore, conn):
    now = pd.Timestamp.now(tz="UTC")
    spine = pd.DataFrame({
        "driver_id": [1001, 1002, 1003, 1004, 1005, 9999, 1001],
        "customer_id": ["c1", "c2", "c3", "c1", "zz", "c2", "c3"],
        "event_timestamp": [now] * 7,
        "amount": [10.0, 0.5, np.nan, 1e6, 3.0, 4.0, -1.0],
        "threshold": pd.array([1, 20, 30, None, 0, 5, 100], dtype="Int64"),
        "weight": [1.0, 0.0, -0.5, 2.0, 1.0, 1.0, np.nan],
    })
    feats = ["ride_scored", "trips_label", "answer", "doubled@1"]
    trained = store.get_historical_features(spine, feats)
    served = store.get_online_features(feats, spine.drop(columns=["event_timestamp"])).to_df()
    cols = ["conv_rate", "spend_share", "lifetime_trips", "driver_score", "trips_label", "answer", "doubled"]
    assert list(served.columns) == ["driver_id", "customer_id"] + cols
    for c in cols:
        assert [py(v) for v in trained[c]] == [py(v) for v in served[c]], c
    # and both are the expressions over the served inputs
    assert [py(v) for v in served["spend_share"]] == [
        spend_share(a, latest_customer(conn, c)[0]) for c, a in zip(spine["customer_id"], spine["amount"])]
    assert [py(v) for v in served["answer"]] == [42] * 7
    assert served["driver_score"].notna().sum() >= 4
