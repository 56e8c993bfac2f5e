"""Aggregation views from Python: declared in YAML, applied idempotently, trained on with
get_historical_features and served with get_online_features; the two agree at the same instant,
and both equal plain SQL over the example's purchases."""
import pandas as pd

from feature_store import FeatureStore

DEFS = """
entities:
  - name: shopper
    join_keys: [customer_id]
views:
  - name: shopper_spend
    source: purchases
    entity: shopper
    event_time: purchased_at
    aggregations: ["avg(amount) over '7 days' as avg_7d", "count(*) over '1 day' as n_1d", "sum(amount) as total"]
    filter: amount > 0
"""


def test_apply_train_serve(store: FeatureStore, conn):
    plan = store.apply(DEFS)
    assert ("view", "shopper_spend", "create") in {(c.kind, c.name, c.action) for c in plan.changes}
    again = store.apply(DEFS)
    assert not again.changed
    assert conn.execute("SELECT kind, filter FROM fs_views WHERE name = 'shopper_spend'").fetchone() == \
        ("aggregate", "(amount > (0)::numeric)")

    # training at one instant, then serving in one snapshot-free call each: the purchases do not
    # change in between, and a window edge would need an event within the seconds between
    t = conn.execute("SELECT date_trunc('second', now())").fetchone()[0]
    entity_df = pd.DataFrame({"customer_id": ["c1", "c2", "c3", "c9"], "event_timestamp": [t] * 4})
    df = store.get_historical_features(entity_df, ["shopper_spend:avg_7d", "shopper_spend:n_1d", "shopper_spend:total"])
    expected = conn.execute("""
        SELECT k, avg(amount) FILTER (WHERE purchased_at >= %(t)s - interval '7 days'),
               count(*) FILTER (WHERE purchased_at >= %(t)s - interval '1 day'), sum(amount)
        FROM unnest(ARRAY['c1', 'c2', 'c3', 'c9']) k
        LEFT JOIN purchases p ON p.customer_id = k AND p.purchased_at < %(t)s AND p.amount > 0
        GROUP BY k ORDER BY k""", {"t": t}).fetchall()
    got = [(r.customer_id, r.avg_7d, r.n_1d, r.total) for r in df.itertuples()]
    norm = lambda rows: [(k, None if pd.isna(a) else float(a), int(n), None if pd.isna(s) else float(s))
                         for k, a, n, s in rows]
    assert norm(got) == norm(expected)
    assert norm(got)[3][2] == 0          # a key without purchases: count 0, the rest NULL

    online = store.get_online_features(["shopper_spend:n_1d", "shopper_spend:total"],
                                       [{"customer_id": "c1"}, {"customer_id": "c9"}]).to_dict()
    assert online["customer_id"] == ["c1", "c9"]
    assert online["n_1d"][1] == 0 and online["total"][1] is None
    assert float(online["total"][0]) == norm(expected)[0][3]   # lifetime: the same whatever the instant
