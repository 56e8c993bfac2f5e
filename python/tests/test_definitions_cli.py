"""YAML apply / plan (idempotence, versions, prune, unsupported declarations) and the CLI."""

from __future__ import annotations

import csv
import json
import os
import pathlib
import subprocess
import sys

import psycopg
import pytest

from feature_store import FeatureStore, FeatureStoreError, NotSupportedByServer
from helpers import frame_rows, join_sql, sql_rows

PY = ROOT = pathlib.Path(__file__).resolve().parents[1]

DEFS = """
entities:
  - name: rider
    join_keys: [customer_id]
    description: A rider
views:
  - name: rider_profile
    source: customer_daily_profile
    entity: rider
    ttl: 2 days
    checks: {lifetime_trips: {min: 0}}
    tags: {team: growth}
services:
  - name: rider_model
    features: [rider_profile:current_balance, rider_profile:lifetime_trips]
"""


def catalog(conn):
    return (sql_rows(conn, "SELECT entity, join_keys, description FROM fs_entities ORDER BY 1"),
            sql_rows(conn, "SELECT name, version, ttl::text, tags::text, online_mode FROM fs_views ORDER BY 1, 2"),
            sql_rows(conn, "SELECT name, version, features FROM fs_services ORDER BY 1, 2"),
            sql_rows(conn, "SELECT name, version, expression, request::text, inputs, returns::text, description "
                           "FROM fs_transforms ORDER BY 1, 2"))


def test_plan_changes_nothing_then_apply_is_idempotent(store: FeatureStore, conn, tmp_path):
    f = tmp_path / "defs.yaml"
    f.write_text(DEFS)
    before = catalog(conn)
    plan = store.plan(str(f))
    assert catalog(conn) == before  # plan changed nothing
    assert [(c.kind, c.name, c.action) for c in plan.changed] == [
        ("entity", "rider", "create"), ("view", "rider_profile", "create"), ("service", "rider_model", "create")]
    applied = store.apply(str(f))
    assert [(c.kind, c.name, c.action) for c in applied.changed] == [(c.kind, c.name, c.action) for c in plan.changed]
    assert sql_rows(conn, "SELECT version, ttl::text, tags->>'team' FROM fs_views WHERE name = 'rider_profile'") == [(1, "2 days", "growth")]
    after = catalog(conn)
    again = store.apply(str(f))
    assert again.changed == [] and catalog(conn) == after
    assert "no changes" in str(again)
    # Objects registered elsewhere are reported as kept, not dropped.
    assert ("view", "driver_stats", "kept") in [(c.kind, c.name, c.action) for c in again.changes]


def test_changed_view_becomes_new_version_and_metadata_updates_in_place(store: FeatureStore, conn):
    store.apply(DEFS)
    p = store.plan(DEFS.replace("ttl: 2 days", "ttl: 3 days"))
    assert [(c.name, c.action, c.detail) for c in p.changed] == [("rider_profile", "new version", "1 -> 2")]
    assert sql_rows(conn, "SELECT max(version) FROM fs_views WHERE name = 'rider_profile'") == [(1,)]
    p = store.apply(DEFS.replace("ttl: 2 days", "ttl: 3 days"))
    assert sql_rows(conn, "SELECT max(version) FROM fs_views WHERE name = 'rider_profile'") == [(2,)]
    p = store.apply(DEFS.replace("ttl: 2 days", "ttl: 3 days").replace("team: growth", "team: risk"))
    assert [(c.name, c.action) for c in p.changed] == [("rider_profile", "update")]
    assert sql_rows(conn, "SELECT version, tags->>'team' FROM fs_views WHERE name = 'rider_profile' AND is_latest") == [(2, "risk")]


def test_prune_drops_only_with_prune(store: FeatureStore, conn):
    store.apply(DEFS)
    smaller = DEFS.split("services:")[0]
    p = store.apply(smaller)
    assert ("service", "rider_model", "kept") in [(c.kind, c.name, c.action) for c in p.changes]
    assert sql_rows(conn, "SELECT count(*) FROM fs_services WHERE name = 'rider_model'") == [(1,)]
    p = store.plan(smaller, prune=True)
    removed = {(c.kind, c.name) for c in p.changes if c.action == "remove"}
    assert ("service", "rider_model") in removed and ("view", "driver_stats") in removed
    assert sql_rows(conn, "SELECT count(*) FROM fs_services WHERE name = 'rider_model'") == [(1,)]
    # A pruning apply that fails half way (a view an unlisted service still uses is not dropped
    # with cascade) rolls back entirely.
    conn.execute("CREATE TABLE keep_me (customer_id text, event_timestamp timestamptz, x int)")
    n_before = catalog(conn)
    p = store.apply(DEFS, prune=True)
    assert sql_rows(conn, "SELECT name FROM fs_views WHERE is_latest ORDER BY 1") == [("rider_profile",)]
    assert sql_rows(conn, "SELECT name FROM fs_services ORDER BY 1") == [("rider_model",)]
    assert sql_rows(conn, "SELECT entity FROM fs_entities ORDER BY 1") == [("rider",)]
    assert catalog(conn) != n_before


# DEFS with two transforms and a second service that names one of them.
TRANSFORM_DEFS = DEFS.replace(
    "features: [rider_profile:current_balance, rider_profile:lifetime_trips]\n",
    "features: [rider_profile:current_balance, rider_profile:lifetime_trips]\n"
    "  - name: rider_scored\n    features: [rider_profile:lifetime_trips, rider_spend_share]\n") + """
transforms:
  - name: rider_spend_share
    expression: amount / nullif(current_balance, 0)
    request: {amount: numeric}
    inputs: [rider_profile:current_balance]
    returns: float8
    description: share of the balance
  - name: rider_trips_next
    expression: lifetime_trips + 1
    inputs: [rider_profile:lifetime_trips]
"""


def transform_rows(conn):
    return sql_rows(conn, "SELECT name, version, expression, request, inputs, returns::text, description, is_latest "
                          "FROM fs_transforms ORDER BY 1, 2")


def test_transforms_apply_plan_idempotent_versions_and_prune(store: FeatureStore, conn):
    store.apply(DEFS)
    before = catalog(conn)
    plan = store.plan(TRANSFORM_DEFS)
    assert catalog(conn) == before
    assert [(c.kind, c.name, c.action) for c in plan.changed] == [
        ("transform", "rider_spend_share", "create"), ("transform", "rider_trips_next", "create"),
        ("service", "rider_scored", "create")]
    # The service names a transform declared in the same file: registered after it.
    applied = store.apply(TRANSFORM_DEFS)
    assert [(c.kind, c.name, c.action) for c in applied.changed] == [(c.kind, c.name, c.action) for c in plan.changed]
    assert transform_rows(conn) == [
        ("rider_spend_share", 1, "amount / nullif(current_balance, 0)", {"amount": "numeric"},
         ["rider_profile:current_balance"], "double precision", "share of the balance", True),
        ("rider_trips_next", 1, "lifetime_trips + 1", None, ["rider_profile:lifetime_trips"], "integer", None, True)]
    assert sql_rows(conn, "SELECT features FROM fs_services WHERE name = 'rider_scored'") == [
        (["rider_profile:lifetime_trips", "rider_spend_share"],)]
    # Unchanged: no change, nothing registered.
    after = catalog(conn)
    again = store.apply(TRANSFORM_DEFS)
    assert again.changed == [] and catalog(conn) == after
    assert ("transform", "rider_spend_share", "unchanged") in [(c.kind, c.name, c.action) for c in again.changes]
    # A changed expression is version 2 (plan first: nothing registered); the service follows the latest.
    changed = TRANSFORM_DEFS.replace("amount / nullif(current_balance, 0)", "amount / nullif(current_balance, 0) * 100")
    p = store.plan(changed)
    assert [(c.kind, c.name, c.action, c.detail) for c in p.changed] == [
        ("transform", "rider_spend_share", "new version", "1 -> 2")]
    assert catalog(conn) == after
    store.apply(changed)
    assert [r[:3] for r in transform_rows(conn) if r[0] == "rider_spend_share"] == [
        ("rider_spend_share", 1, "amount / nullif(current_balance, 0)"),
        ("rider_spend_share", 2, "amount / nullif(current_balance, 0) * 100")]
    assert store.apply(changed).changed == []
    # Metadata only: updated in place.
    p = store.apply(changed.replace("share of the balance", "balance share"))
    assert [(c.kind, c.name, c.action) for c in p.changed] == [("transform", "rider_spend_share", "update")]
    assert sql_rows(conn, "SELECT version, description FROM fs_transforms WHERE name = 'rider_spend_share' AND is_latest") == [
        (2, "balance share")]
    # Without the transforms and the service using one: kept, unless pruned; pruning drops the
    # service before the transform it uses (the server refuses the other order) and the other
    # transform too.
    without = DEFS
    p = store.apply(without)
    assert {(c.kind, c.name) for c in p.changes if c.action == "kept"} >= {
        ("transform", "rider_spend_share"), ("transform", "rider_trips_next"), ("service", "rider_scored")}
    assert len(transform_rows(conn)) == 3
    p = store.plan(without, prune=True)
    removed = [(c.kind, c.name) for c in p.changes if c.action == "remove"]
    assert removed.index(("service", "rider_scored")) < removed.index(("transform", "rider_spend_share"))
    assert len(transform_rows(conn)) == 3
    with pytest.raises(psycopg.errors.DependentObjectsStillExist):
        conn.execute("SELECT fs_drop_transform('rider_spend_share')")  # why the order matters
    store.apply(without, prune=True)
    assert transform_rows(conn) == []
    assert sql_rows(conn, "SELECT name FROM fs_services ORDER BY 1") == [("rider_model",)]
    # Back again: version 1 of new transforms.
    store.apply(TRANSFORM_DEFS)
    assert [r[:2] for r in transform_rows(conn)] == [("rider_spend_share", 1), ("rider_trips_next", 1)]


def test_server_without_transforms_refuses_them(tmp_path):
    """A database whose feature_store is 0.2 (no fs_register_transform, no aggregation views):
    transforms and aggregation views raise NotSupportedByServer before anything is registered."""
    from conftest import QUICKSTART_SQL, _base_dsn, dsn_for
    name = f"fs_py_old_{os.getpid()}"
    with psycopg.connect(_base_dsn(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(dsn_for(name), autocommit=True) as c:
            c.execute((ROOT.parent / "scripts" / "example_data.sql").read_text())
            c.execute(QUICKSTART_SQL.replace("CREATE EXTENSION feature_store;",
                                             "CREATE EXTENSION feature_store VERSION '0.2';"))
            assert sql_rows(c, "SELECT count(*) FROM pg_proc WHERE proname = 'fs_register_transform'") == [(0,)]
            with FeatureStore(dsn_for(name), progress=False) as old:
                old.apply(DEFS)
                before = (
                    sql_rows(c, "SELECT entity FROM fs_entities ORDER BY 1"),
                    sql_rows(c, "SELECT name, version FROM fs_views ORDER BY 1, 2"),
                    sql_rows(c, "SELECT name, version FROM fs_services ORDER BY 1, 2"))
                assert ("rider_profile", 1) in before[1]
                for text in (TRANSFORM_DEFS.replace("ttl: 2 days", "ttl: 5 days"),
                             DEFS.replace("ttl: 2 days", "ttl: 5 days").replace(
                                 "views:\n", "views:\n  - {name: agg, source: purchases, entity: rider, event_time: "
                                 "purchased_at, aggregations: [\"count(*) over '1 day' as n\"]}\n")):
                    for call in (old.plan, old.apply):
                        with pytest.raises(NotSupportedByServer) as e:
                            call(text)
                        assert e.value.sqlstate == "0A000" and "0.2" in e.value.message
                        assert (sql_rows(c, "SELECT entity FROM fs_entities ORDER BY 1"),
                                sql_rows(c, "SELECT name, version FROM fs_views ORDER BY 1, 2"),
                                sql_rows(c, "SELECT name, version FROM fs_services ORDER BY 1, 2")) == before
                # Training sets and serving still work there (the client reads no fs_transforms).
                c.execute("SELECT fs_materialize('rider_profile', '-infinity', now())")
                spine = "SELECT * FROM ride_requests ORDER BY request_id"
                got = old.get_historical_features(spine, ["rider_model"])
                want = sql_rows(c, join_sql(c, "ride_requests", ["rider_model"], order_by="request_id"))
                assert frame_rows(got, list(got.columns)) == want
                d = old.get_online_features("rider_model", [{"customer_id": "c1"}, {"customer_id": "zz"}]).to_dict()
                raw = sql_rows(c, "SELECT features FROM fs_online_batch('{rider:c1,rider:zz}', 'rider_model')")
                assert d["lifetime_trips"] == [None if r[0] is None else r[0]["rider_profile"]["lifetime_trips"] for r in raw]
                assert d["lifetime_trips"][0] is not None
    finally:
        with psycopg.connect(_base_dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.mark.parametrize("text, cls, sqlstate", [
    ("views:\n  - {name: a, source: customer_daily_profile, entity: rider, aggregations: [\"count(*) over '1 month' as n\"]}\n",
     FeatureStoreError, "22023"),
    # transforms the server refuses: its SQLSTATE, and nothing registered
    ("transforms:\n  - {name: t, expression: 'amount * 2', request: {amount: nosuchtype}}\n", FeatureStoreError, "42704"),
    ("transforms:\n  - {name: t, expression: 'amount +', request: {amount: int}}\n", FeatureStoreError, "42601"),
    ("transforms:\n  - {name: t, expression: 'amount + zz', request: {amount: int}}\n", FeatureStoreError, "42703"),
    ("transforms:\n  - {name: t, expression: 'now()'}\n", FeatureStoreError, "42P17"),
    ("transforms:\n  - {name: t, expression: 'nope * 2', inputs: ['rider_profile:nope']}\n", FeatureStoreError, "42704"),
    ("transforms:\n  - {name: t, expression: '1', returns: nosuch}\n", FeatureStoreError, "42704"),
    ("transforms:\n  - {name: rider_profile, expression: '1'}\n", FeatureStoreError, "42710"),
    # ... and those the client refuses before sending anything
    ("transforms:\n  - {name: t, request: {amount: int}}\n", FeatureStoreError, "22023"),
    ("transforms:\n  - {name: t, expression: '1', request: [amount]}\n", FeatureStoreError, "22023"),
    ("transforms:\n  - {name: t, expression: '1', colour: red}\n", FeatureStoreError, "22023"),
    ("tables: []\n", FeatureStoreError, "22023"),
    ("views:\n  - {name: a, entity: rider}\n", FeatureStoreError, "22023"),
    ("views:\n  - {name: a, source: customer_daily_profile, entity: rider, colour: red}\n", FeatureStoreError, "22023"),
    ("entities:\n  - {name: e, join_keys: [k]}\n  - {name: e, join_keys: [k]}\n", FeatureStoreError, "42710"),
    ("views:\n  - {name: a, source: no_such_table, entity: rider}\n", FeatureStoreError, "42P01"),
    ("views:\n  - {name: a, source: customer_daily_profile, entity: nobody}\n", FeatureStoreError, "42704"),
    ("entities: [\n", FeatureStoreError, "22023"),
])
def test_bad_definitions_change_nothing(store: FeatureStore, conn, text, cls, sqlstate):
    store.apply(DEFS)
    before = catalog(conn)
    with pytest.raises(cls) as e:
        store.apply(DEFS + "\n" + text if not text.startswith(("entities: [", "tables")) else text)
    assert e.value.sqlstate == sqlstate, e.value
    assert catalog(conn) == before


def cli(db, *args, check=True):
    env = dict(os.environ, PYTHONPATH=str(PY), FEATURE_STORE_DSN=db)
    r = subprocess.run([sys.executable, "-m", "feature_store", *args], capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        raise AssertionError(r.stderr)
    return r


def test_cli(db, conn, tmp_path):
    f = tmp_path / "defs.yaml"
    f.write_text(DEFS.replace("rider", "cli_rider"))
    r = cli(db, "plan", str(f))
    assert "+ view cli_rider_profile: create" in r.stdout and "planned (nothing applied)" in r.stdout
    r = cli(db, "apply", str(f))
    assert "applied" in r.stdout
    assert "no changes" in cli(db, "apply", str(f)).stdout
    assert r.stderr == ""  # not a terminal: no progress output
    r = cli(db, "materialize", "2000-01-01", "2100-01-01", "--views", "cli_rider_profile")
    n = sql_rows(conn, "SELECT rows_written FROM fs_runs WHERE view = 'cli_rider_profile' ORDER BY run_id DESC LIMIT 1")[0][0]
    assert r.stdout == f"cli_rider_profile\t{n}\n"
    r = cli(db, "materialize-incremental", "--views", "cli_rider_profile")
    assert r.stdout.startswith("cli_rider_profile\t")
    r = cli(db, "online", "cli_rider:c1", "cli_rider:zz", "--view-or-service", "cli_rider_model")
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    want = sql_rows(conn, "SELECT features FROM fs_online_batch('{cli_rider:c1,cli_rider:zz}', 'cli_rider_model')")
    assert [x["features"] for x in lines] == [json.loads(json.dumps(w[0], default=float)) for w in want]
    out = tmp_path / "t.csv"
    r = cli(db, "training-set", "--spine", "SELECT request_id, customer_id, event_timestamp FROM ride_requests ORDER BY request_id",
            "--features", "cli_rider_model", "--out", str(out))
    assert r.stdout == f"5 rows written to {out}\n" and r.stderr == ""  # no progress off a terminal
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert [r["request_id"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert list(rows[0]) == ["request_id", "customer_id", "event_timestamp", "current_balance", "lifetime_trips"]
    spine_csv = tmp_path / "spine.csv"
    spine_csv.write_text("customer_id,event_timestamp\nc1,2100-01-01T00:00:00Z\n")
    r = cli(db, "training-set", "--spine", str(spine_csv), "--features", "cli_rider_profile:lifetime_trips", "--out", str(out))
    assert r.returncode == 0
    r = cli(db, "ls")
    assert "view\tcli_rider_profile@1" in r.stdout and "entity\tcli_rider\t(customer_id)" in r.stdout
    r = cli(db, "training-set", "--spine", "ride_requests", "--features", "nope:x", "--out", str(out), check=False)
    assert r.returncode == 1 and "SQLSTATE 42704" in r.stderr
    r = cli(db, "training-set", "--spine", "ride_requests", "--features", "cli_rider_model", "--out", str(tmp_path / "t.parquet"), check=False)
    import importlib.util
    if importlib.util.find_spec("pyarrow") is None:
        assert r.returncode == 1 and "pyarrow" in r.stderr


def test_cli_online_request(db, conn, tmp_path):
    """`online --request`: one object for every entity, or one per entity; equal to
    fs_online_batch with the same requests; bad requests exit 1 with a SQLSTATE."""
    f = tmp_path / "defs.yaml"
    f.write_text(TRANSFORM_DEFS.replace("rider", "clr_rider").replace("    ttl: 2 days\n", ""))  # no TTL: values stay served
    cli(db, "apply", str(f))
    cli(db, "materialize", "2000-01-01", "2100-01-01", "--views", "clr_rider_profile")

    def served(entities, name, requests):
        rows = sql_rows(conn, "SELECT features FROM fs_online_batch(%s::fs_entity[], %s, %s::jsonb[])",
                        (entities, name, [json.dumps(r) for r in requests]))
        return [json.loads(json.dumps(w[0], default=float)) for w in rows]

    ents = ["clr_rider:c1", "clr_rider:c2", "clr_rider:zz"]
    r = cli(db, "online", *ents, "--view-or-service", "clr_rider_scored", "--request", '{"amount": 12.5}')
    got = [json.loads(x)["features"] for x in r.stdout.splitlines()]
    assert got == served(ents, "clr_rider_scored", [{"amount": 12.5}] * 3)
    assert any(g.get("clr_rider_spend_share") is not None for g in got), got  # the transform computed something
    per = [{"amount": 1}, {"amount": 100}, {"amount": 7}]
    r = cli(db, "online", *ents, "--view-or-service", "clr_rider_spend_share", "--request", json.dumps(per))
    got = [json.loads(x)["features"] for x in r.stdout.splitlines()]
    assert got == served(ents, "clr_rider_spend_share", per)
    assert got[0] != got[1] or got[0] == {"clr_rider_spend_share": None}
    for args, state in ((["--view-or-service", "clr_rider_spend_share", "--request", "{amount: 1"], "22P02"),
                        (["--view-or-service", "clr_rider_spend_share", "--request", "[{}]"], "22023"),
                        (["--request", '{"amount": 1}'], "22023"),
                        (["--view-or-service", "clr_rider_spend_share", "--request", '"x"'], "22023"),
                        (["--view-or-service", "clr_rider_spend_share", "--request", '{"nope": 1}'], "22023"),
                        (["--view-or-service", "clr_rider_spend_share"], "22023")):
        r = cli(db, "online", *ents, *args, check=False)
        assert r.returncode == 1 and f"SQLSTATE {state}" in r.stderr, (args, r.stderr)
