"""Command-line interface: ``python3 -m feature_store [--dsn DSN] COMMAND ...``.

Commands::

    apply FILE [--prune]           register the definitions in FILE (YAML); print what changed
    plan FILE [--prune]            print what apply would change, changing nothing
    materialize START END [--views V ...]
    materialize-incremental [--views V ...]
    training-set --spine SPINE --features REF [REF ...] --out FILE.csv|FILE.parquet
                 [--timestamp-column C] [--full-feature-names] [--as-of-created]
    online ENTITY [ENTITY ...] [--view-or-service NAME] [--request JSON]
                                   print fs_online_batch as JSON lines; --request gives the
                                   transforms' request parameters: one JSON object for every
                                   entity, or a JSON array of one object per entity
    ls [entities|views|services]

The connection string comes from --dsn, else $FEATURE_STORE_DSN, else libpq's PG* variables.
Progress (rows, elapsed time) goes to stderr when it is a terminal. Errors print
``error: <message> (SQLSTATE xxxxx)`` and exit with status 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from typing import List, Optional

import pandas as pd

from .errors import FeatureStoreError
from .store import FeatureStore


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m feature_store",
                                description="feature_store: declarations, materialization, training sets, serving.")
    p.add_argument("--dsn", default=os.environ.get("FEATURE_STORE_DSN", ""),
                   help="libpq connection string (default $FEATURE_STORE_DSN, else PG* variables)")
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in (("apply", "register the definitions of a YAML file"),
                        ("plan", "show what apply would change, changing nothing")):
        c = sub.add_parser(name, help=help_)
        c.add_argument("file")
        c.add_argument("--prune", action="store_true", help="drop registered objects missing from the file")
    c = sub.add_parser("materialize", help="fs_materialize for each online view")
    c.add_argument("start")
    c.add_argument("end")
    c.add_argument("--views", nargs="+")
    c = sub.add_parser("materialize-incremental", help="fs_materialize_incremental for each online view")
    c.add_argument("--views", nargs="+")
    c = sub.add_parser("training-set", help="a point-in-time training set into a CSV or Parquet file")
    c.add_argument("--spine", required=True,
                   help="a .csv or .parquet file, a table name, or a SQL query (SELECT ...)")
    c.add_argument("--features", required=True, nargs="+", help="feature references and service names")
    c.add_argument("--out", required=True, help="output file, .csv or .parquet")
    c.add_argument("--timestamp-column", default="event_timestamp")
    c.add_argument("--full-feature-names", action="store_true")
    c.add_argument("--as-of-created", action="store_true")
    c = sub.add_parser("online", help="online features of entities (driver:1001, user_merchant:(42,7))")
    c.add_argument("entities", nargs="+")
    c.add_argument("--view-or-service", default=None)
    c.add_argument("--request", default=None,
                   help="request parameters of the transforms: a JSON object (for every entity) "
                        "or an array of one object per entity")
    c = sub.add_parser("ls", help="list registered objects")
    c.add_argument("what", nargs="?", choices=["entities", "views", "services"], default=None)
    return p


def _need_parquet(path: str) -> None:
    if path.endswith(".parquet") and importlib.util.find_spec("pyarrow") is None \
            and importlib.util.find_spec("fastparquet") is None:
        raise FeatureStoreError(None, f"{path}: Parquet needs pyarrow (or fastparquet), which is not installed",
                                hint="Debian bookworm does not package pyarrow; use a .csv file instead.")


def _read_spine(spine: str, ts: str):
    if spine.endswith(".csv"):
        df = pd.read_csv(spine)
        if ts in df.columns:
            df[ts] = pd.to_datetime(df[ts], utc=True)
        return df
    if spine.endswith(".parquet"):
        _need_parquet(spine)
        return pd.read_parquet(spine)
    words = spine.split()
    if len(words) == 1:
        return f"SELECT * FROM {spine}"  # a table or view name, as SQL would read it
    return spine


def _requests(text: str, n: int) -> List[str]:
    """--request as one JSON object text per entity."""
    try:
        value = json.loads(text)
    except ValueError as e:
        raise FeatureStoreError("22P02", f"--request is not valid JSON: {e}") from None
    if isinstance(value, dict):
        return [json.dumps(value)] * n
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        if len(value) != n:
            raise FeatureStoreError("22023", f"--request has {len(value)} objects for {n} entities",
                                    hint="Give one object for every entity, or one array element per entity.")
        return [json.dumps(v) for v in value]
    raise FeatureStoreError("22023", "--request must be a JSON object or an array of objects")


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with FeatureStore(args.dsn) as store:
            return _run(store, args)
    except FeatureStoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _run(store: FeatureStore, args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd in ("apply", "plan"):
        plan = store.apply(args.file, prune=args.prune) if cmd == "apply" else store.plan(args.file, prune=args.prune)
        print(plan)
    elif cmd == "materialize":
        for v, n in store.materialize(args.start, args.end, views=args.views).items():
            print(f"{v}\t{n}")
    elif cmd == "materialize-incremental":
        for v, n in store.materialize_incremental(views=args.views).items():
            print(f"{v}\t{n}")
    elif cmd == "training-set":
        _need_parquet(args.out)
        if not args.out.endswith((".csv", ".parquet")):
            raise FeatureStoreError(None, f"{args.out}: the output file must end in .csv or .parquet")
        df = store.get_historical_features(_read_spine(args.spine, args.timestamp_column), args.features,
                                           full_feature_names=args.full_feature_names,
                                           as_of_created=args.as_of_created, timestamp_column=args.timestamp_column)
        if args.out.endswith(".csv"):
            df.to_csv(args.out, index=False)
        else:
            df.to_parquet(args.out, index=False)
        print(f"{len(df)} rows written to {args.out}")
    elif cmd == "online":
        if args.request is None:
            rows = store._query("SELECT entity::text, features FROM fs_online_batch(%s::fs_entity[], %s)",
                                (args.entities, args.view_or_service))
        else:
            if args.view_or_service is None:
                raise FeatureStoreError("22023", "--request needs --view-or-service",
                                        hint="Name the transform or the service whose transforms take the request.")
            rows = store._query("SELECT entity::text, features FROM fs_online_batch(%s::fs_entity[], %s, %s::jsonb[])",
                                (args.entities, args.view_or_service, _requests(args.request, len(args.entities))))
        for entity, features in rows:
            print(json.dumps({"entity": entity, "features": features}, default=str))
    elif cmd == "ls":
        if args.what in (None, "entities"):
            for e in store.list_entities():
                print(f"entity\t{e.name}\t({', '.join(e.join_keys)})")
        if args.what in (None, "views"):
            for v in store.list_views():
                print(f"view\t{v.name}@{v.version}\t{v.source}\t{v.entity}\t{v.online_mode}\t{', '.join(v.features)}")
        if args.what in (None, "services"):
            for s in store.list_services():
                print(f"service\t{s.name}@{s.version}\t{', '.join(s.features)}")
    return 0
