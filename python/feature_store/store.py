"""The FeatureStore client: Feast's SDK calls, each one a thin wrapper over feature_store's SQL."""

from __future__ import annotations

import contextlib
import datetime as _dt
import decimal
import itertools
import json
import sys
import time
from dataclasses import dataclass, field
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple,
                    Union)

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from . import _transfer as tx
from .errors import FeatureStoreError

__all__ = ["FeatureStore", "OnlineResponse", "Entity", "FeatureView", "FeatureService"]

FeatureList = Union[str, Sequence[str]]
_spine_counter = itertools.count(1)


@dataclass(frozen=True)
class Entity:
    """A registered entity (a row of ``fs_entities``)."""
    name: str
    join_keys: List[str]
    key_types: Optional[List[str]]
    description: Optional[str]


@dataclass(frozen=True)
class FeatureView:
    """The latest version of a registered feature view (``fs_views`` and ``fs_features``)."""
    name: str
    version: int
    source: str
    entity: str
    join_keys: List[str]
    event_time: str
    created_time: Optional[str]
    ttl: Optional[_dt.timedelta]
    online_mode: str
    features: Dict[str, str]  # feature name -> SQL type, in view order
    checks: Dict[str, Any]
    description: Optional[str]
    owner: Optional[str]
    tags: Dict[str, Any]
    kind: str = "latest"


@dataclass(frozen=True)
class FeatureService:
    """The latest version of a registered feature service (``fs_services``)."""
    name: str
    version: int
    features: List[str]
    description: Optional[str]
    owner: Optional[str]
    tags: Dict[str, Any]


@dataclass
class OnlineResponse:
    """What :meth:`FeatureStore.get_online_features` returns.

    One row per entity row, in the order given: the entity key columns as given, then one column
    per feature (``feature``, or ``view__feature`` with ``full_feature_names``). A feature of an
    entity without an online row, or whose row is older than the view's TTL (expired), is ``None``.
    """
    columns: Dict[str, List[Any]]
    dtypes: Dict[str, int] = field(default_factory=dict)  # feature column -> type OID

    def to_dict(self) -> Dict[str, List[Any]]:
        """``{column: [value per entity row]}``, as Feast's ``OnlineResponse.to_dict()``."""
        return {k: list(v) for k, v in self.columns.items()}

    def to_df(self) -> pd.DataFrame:
        """The same as a DataFrame; integer features as nullable ``Int64``, timestamps UTC-aware."""
        out: Dict[str, pd.Series] = {}
        for name, values in self.columns.items():
            t = self.dtypes.get(name)
            if t in tx._INT_DTYPE:
                out[name] = pd.Series(values, dtype=tx._INT_DTYPE[t])
            elif t in (tx.FLOAT4, tx.FLOAT8, tx.NUMERIC):
                out[name] = pd.Series([np.nan if v is None else float(v) for v in values],
                                      dtype=np.float32 if t == tx.FLOAT4 else np.float64)
            elif t == tx.BOOL:
                out[name] = pd.Series(values, dtype="boolean")
            elif t == tx.TIMESTAMPTZ:
                out[name] = pd.to_datetime(pd.Series(values, dtype=object), utc=True)
            elif t == tx.TIMESTAMP:
                out[name] = pd.to_datetime(pd.Series(values, dtype=object))
            elif t is None and values and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                              for v in values if v is not None):
                out[name] = pd.Series(values, dtype="Int64")  # an integer key column
            elif t is None:
                out[name] = pd.Series(values)
            else:
                out[name] = pd.Series(values, dtype=object)
        return pd.DataFrame(out)


def _progress_printer(label: str, enabled: bool) -> Optional[Callable[[int], None]]:
    """Rows and elapsed time on stderr, only when it is a terminal."""
    if not enabled:
        return None
    start = time.monotonic()
    last = [0.0]

    def report(rows: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            sys.stderr.write(f"\r{label}: {rows:,} rows, {now - start:.1f} s")
            sys.stderr.flush()
    return report


class FeatureStore:
    """A connection to a PostgreSQL database with the feature_store extension.

    ``FeatureStore(dsn)`` takes a libpq connection string or URI (``""`` uses the ``PG*``
    environment variables) or an open :class:`psycopg.Connection`. The connection is opened on
    first use in autocommit mode; each call runs in its own transaction (a savepoint when the
    given connection is already inside one). Server errors are raised as
    :class:`~feature_store.FeatureStoreError` with their SQLSTATE.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, dsn: Union[str, psycopg.Connection] = "", *, progress: Optional[bool] = None) -> None:
        self._dsn = dsn if isinstance(dsn, str) else None
        self._conn: Optional[psycopg.Connection] = None if isinstance(dsn, str) else dsn
        self._owns_conn = isinstance(dsn, str)
        # Progress lines only on a terminal unless asked for explicitly.
        self._progress = sys.stderr.isatty() if progress is None else progress
        # what the server offers (a 0.2 database lacks some), looked up once per connection
        self._server_has: Dict[str, bool] = {}
        self._server_has_conn: Optional[psycopg.Connection] = None

    # -- connection -------------------------------------------------------------------------
    @property
    def connection(self) -> psycopg.Connection:
        """The underlying psycopg connection (opened on first use)."""
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(self._dsn or "", autocommit=True)
            except psycopg.Error as e:
                raise FeatureStoreError.from_psycopg(e) from None
        return self._conn

    def close(self) -> None:
        """Closes the connection if this object opened it."""
        if self._conn is not None and self._owns_conn:
            self._conn.close()
        self._conn = None

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        conn = self.connection
        try:
            with conn.transaction():
                yield conn
        except psycopg.Error as e:
            raise FeatureStoreError.from_psycopg(e) from None

    def _query(self, query: Union[str, sql.Composable], params: Any = None) -> List[Tuple[Any, ...]]:
        with self._tx() as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description is not None else []

    # -- training ---------------------------------------------------------------------------
    def get_historical_features(self, entity_df: Union[pd.DataFrame, str], features: FeatureList,
                                full_feature_names: bool = False, as_of_created: bool = False,
                                timestamp_column: str = "event_timestamp") -> pd.DataFrame:
        """A point-in-time correct training set (``fs_point_in_time_join``) as a DataFrame.

        Args:
            entity_df: the spine. A DataFrame with the key columns of every view involved
                (named as the entities' keys; any integer dtype for an integer key) and the time
                column; it is uploaded with COPY into a temporary table. Or a SQL query (text)
                whose result is the spine.
            features: feature references (``view:feature``, ``view:*``, ``view@N:feature``) and
                feature service names (``service``, ``service@N``), or one service name.
            full_feature_names: name feature columns ``view__feature`` (Feast's option).
            as_of_created: only values whose created time is at or before the row's time.
            timestamp_column: the spine's time column (Feast: ``event_timestamp``). Timezone-aware
                values are compared as instants; naive ones are read as UTC.

        Returns:
            One row per spine row, **in the spine's order** (for a DataFrame: its rows, with its
            index; for a query: the query's row order), every spine column first (a DataFrame's
            columns with their dtypes unchanged), then one column per feature. Values follow
            design section 2 (the value as of the row's time, NULL when none). Dtypes: integer
            features nullable ``Int16/Int32/Int64``, floats ``float32/float64`` (NaN for NULL),
            ``numeric`` ``float64``, booleans ``boolean``, ``timestamptz`` ``datetime64[ns, UTC]``,
            ``timestamp`` and ``date`` naive ``datetime64[ns]``, text ``object`` (``None`` for
            NULL), anything else ``object`` holding its JSON form (lists, dicts, strings).
        """
        refs = [features] if isinstance(features, str) else list(features)
        progress = _progress_printer("training set", self._progress)
        t0 = time.monotonic()
        if progress is not None:
            sys.stderr.write(f"training set: {len(entity_df) if isinstance(entity_df, pd.DataFrame) else 'query'}"
                             " spine rows, joining ...")
            sys.stderr.flush()
        with self._tx() as conn:
            if isinstance(entity_df, str):
                out = self._historical_from_query(conn, entity_df, refs, full_feature_names,
                                                  as_of_created, timestamp_column, progress)
            elif isinstance(entity_df, pd.DataFrame):
                out = self._historical_from_frame(conn, entity_df, refs, full_feature_names,
                                                  as_of_created, timestamp_column, progress)
            else:
                raise TypeError("entity_df must be a pandas.DataFrame or a SQL query string")
        if progress is not None:
            sys.stderr.write(f"\rtraining set: {len(out):,} rows, {time.monotonic() - t0:.1f} s{' ' * 20}\n")
        return out

    def _join_query(self, conn: psycopg.Connection, spine: str, refs: List[str], full: bool,
                    as_of_created: bool, ts: str) -> sql.Composable:
        with conn.cursor() as cur:
            cur.execute("SELECT fs_training_columns(%s::regclass, %s::text[], %s, %s)",
                        (spine, refs, ts, full))
            coldefs = cur.fetchone()[0]  # type: ignore[index]
        # The column definition list comes from the server (identifiers already quoted).
        return sql.SQL("SELECT * FROM fs_point_in_time_join({}::regclass, {}::text[], {}, {}, {}) AS t({})").format(
            sql.Literal(spine), sql.Literal(refs), sql.Literal(ts), sql.Literal(full),
            sql.Literal(as_of_created), sql.SQL(coldefs))

    def _historical_from_query(self, conn: psycopg.Connection, query: str, refs: List[str],
                               full: bool, as_of_created: bool, ts: str,
                               progress: Optional[Callable[[int], None]]) -> pd.DataFrame:
        spine = f"pg_temp.fs_spine_{next(_spine_counter)}"
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT * FROM ({}) q").format(
                sql.Identifier(spine.split(".")[1]), sql.SQL(query)))
        out = self._training_columns(conn, spine, refs, full, as_of_created, ts, True)
        if out is None:
            join = self._join_query(conn, spine, refs, full, as_of_created, ts)
            out = tx.select_to_frame(conn, join, tx.describe(conn, join))
        if progress is not None:
            progress(len(out))
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP TABLE {}").format(sql.SQL(spine)))
        return out

    def _training_columns(self, conn: psycopg.Connection, spine: str, refs: List[str], full: bool,
                          as_of_created: bool, ts: str, spine_columns: bool) -> Optional[pd.DataFrame]:
        """The training set through fs_training_set_columns (one bytea per column, built by the
        join as it emits rows); None when the server has no such function (feature_store 0.2) or
        a column has a type whose values are wanted in their JSON form (then the caller uses
        select_to_frame)."""
        if not self._has(conn, "to_regproc('fs_training_set_columns')"):
            return None
        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT column_name::text, column_type::oid, row_count, \"values\", nulls "
                        "FROM fs_training_set_columns(%s::regclass, %s::text[], %s, %s, %s, spine_columns => %s)",
                        (spine, refs, ts, full, as_of_created, spine_columns))
            rows = cur.fetchall()
        return tx.training_columns_to_frame(rows)

    def _spine_keys(self, conn: psycopg.Connection, refs: List[str]) -> List[Tuple[str, int, str]]:
        """(key column, type OID, type name) of every entity of the views the references name."""
        with conn.cursor() as cur:
            cur.execute(self._with_transforms(conn, _SPINE_KEYS_SQL), {"refs": refs})
            return [(r[0], r[1], r[2]) for r in cur.fetchall()]

    def _spine_requests(self, conn: psycopg.Connection, refs: List[str]) -> List[Tuple[str, int, str]]:
        """(parameter, type OID, type name) of the request parameters of the transforms named."""
        if all(":" in r for r in refs if isinstance(r, str)):
            return []  # only view features: no transform (saves a round trip)
        with conn.cursor() as cur:
            cur.execute(self._with_transforms(conn, _SPINE_REQUEST_SQL), {"refs": refs})
            return [(r[0], r[1], r[2]) for r in cur.fetchall()]

    def _historical_from_frame(self, conn: psycopg.Connection, df: pd.DataFrame, refs: List[str],
                               full: bool, as_of_created: bool, ts: str,
                               progress: Optional[Callable[[int], None]]) -> pd.DataFrame:
        if ts not in df.columns:
            raise FeatureStoreError("42703", f'entity_df has no column "{ts}"',
                                    hint="Name the spine's time column with timestamp_column=.")
        seen = set()
        upload: List[tx.Column] = []
        coldefs: List[sql.Composable] = []
        for key, oid, typname in self._spine_keys(conn, refs):
            if key in seen or key not in df.columns or key == ts:
                continue  # a missing key column is reported by the join itself (42703)
            seen.add(key)
            upload.append(tx.Column(key, oid))
            coldefs.append(sql.SQL("{} {}").format(sql.Identifier(key), sql.SQL(typname)))
        upload.append(tx.Column(ts, tx.TIMESTAMPTZ))
        coldefs.append(sql.SQL("{} timestamptz").format(sql.Identifier(ts)))
        seen.add(ts)
        # The transforms' request parameters are bound to spine columns of the same names: those
        # columns travel too, typed as the parameters (a missing one is the join's error, 42703).
        for param, oid, typname in self._spine_requests(conn, refs):
            if param in seen or param not in df.columns:
                continue
            seen.add(param)
            upload.append(tx.Column(param, oid))
            coldefs.append(sql.SQL("{} {}").format(sql.Identifier(param), sql.SQL(typname)))

        name = f"fs_spine_{next(_spine_counter)}"
        table = sql.Identifier(name)
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
                table, sql.SQL(", ").join(coldefs)))
        # Only the columns the join reads travel; the others are taken from entity_df as they are.
        tx.copy_frame_in(conn, table, df, upload)

        # The join returns the rows in spine order, for a table its physical order: the order
        # COPY wrote them in, which is entity_df's.
        fetched = self._training_columns(conn, f"pg_temp.{name}", refs, full, as_of_created, ts, False)
        if fetched is None:
            join = self._join_query(conn, f"pg_temp.{name}", refs, full, as_of_created, ts)
            fetched = tx.select_to_frame(conn, join, tx.describe(conn, join)[len(upload):])
        if progress is not None:
            progress(len(fetched))
        for c in fetched.columns:
            if c in df.columns:
                raise FeatureStoreError("42702", f'column "{c}" of the training set is also a column of entity_df',
                                        hint="Use full_feature_names=True, or rename the entity_df column.")
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP TABLE {}").format(table))
        if len(fetched) != len(df):
            raise FeatureStoreError(None, f"the join returned {len(fetched)} rows for {len(df)} spine rows")
        out = df.copy()
        for c in fetched.columns:
            out[c] = pd.Series(fetched[c].array, index=df.index, name=c)
        return out

    # -- serving ----------------------------------------------------------------------------
    def get_online_features(self, features: FeatureList,
                            entity_rows: Union[Sequence[Mapping[str, Any]], pd.DataFrame],
                            full_feature_names: bool = False,
                            request_data: Union[None, Sequence[Mapping[str, Any]], Mapping[str, Sequence[Any]],
                                                pd.DataFrame] = None) -> OnlineResponse:
        """Latest online values for many entities (``fs_online_batch``).

        Args:
            features: feature references (``view:feature``, ``view:*``, ``view@N:feature``),
                transform names (``transform``, ``transform@N``) and service names (a service's
                transforms included), or one service or transform name.
            entity_rows: one mapping per entity (``{"driver_id": 1001}``; composite keys give
                every key column), or a DataFrame of key columns. Rows may carry the keys of
                several entities when the features come from views of several entities. As in
                Feast, a row may also carry the request parameters of the transforms.
            full_feature_names: name feature columns ``view__feature`` (a transform's column is
                its name either way, as in training sets).
            request_data: the transforms' request parameters, one request per entity row: a
                sequence of mappings, a DataFrame, or Feast-style columns (``{"amount": [...]}``).
                A parameter found here wins over an ``entity_rows`` column of the same name.

        The definitions are read in one statement and the values in one more: one
        ``fs_online_batch`` call per view, and one ``fs_online_batch(entities, transform,
        requests)`` per transform (each row's request holding that transform's parameters),
        all in one query, whatever the number of entities. Values are those ``fs_online``
        serves (TTL applied: an expired value is ``None``); a transform's value is the one
        ``fs_online(entity, transform, request)`` serves (its inputs as served).
        """
        refs = [features] if isinstance(features, str) else list(features)
        if isinstance(entity_rows, pd.DataFrame):
            rows = entity_rows.to_dict("records")
        else:
            rows = [dict(r) for r in entity_rows]
        merged = _merge_requests(rows, request_data)
        with self._tx() as conn:
            plan = self._resolve_online(conn, refs, rows)
            # One fs_online_batch call per view version and per transform, in one statement.
            targets: List[Tuple[str, str, List[str], Optional[List[str]]]] = []  # (name, entity, keys, params)
            for vref, (entity, keys) in plan.views.items():
                targets.append((vref, entity, keys, None))
            for tref, (entity, keys, params) in plan.transforms.items():
                targets.append((tref, entity, keys, params))
            calls: List[sql.Composable] = []
            params: List[Any] = []
            for i, (name, entity, keys, req_params) in enumerate(targets):
                for k in keys:
                    if rows and not any(k in r for r in rows):
                        raise FeatureStoreError("42703", f'entity rows have no key "{k}" of entity "{entity}"',
                                                hint=f'{"Transform" if req_params is not None else "View"} "{name}" '
                                                     f'is keyed by ({", ".join(keys)}).')
                arrays = [[_key_text(r.get(k)) for r in rows] for k in keys]
                cols = [sql.Identifier(f"k{j}") for j in range(len(keys))]
                null_test = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(c) for c in cols)
                requests = sql.SQL("")
                if req_params is not None:
                    for p in req_params:
                        if rows and not any(p in m for m in merged):
                            raise FeatureStoreError(
                                "22023", f'request parameter "{p}" of transform "{name}" is missing',
                                hint="Pass it in request_data=, or as a column of entity_rows.")
                    requests = sql.SQL(", %s::text[]::jsonb[]")
                calls.append(sql.SQL(
                    "SELECT {i}::int AS call, b.ord, b.features FROM fs_online_batch(ARRAY("
                    "SELECT CASE WHEN {null_test} THEN NULL ELSE fs_entity(%s::text, {cols}) END "
                    "FROM unnest({arrs}) WITH ORDINALITY u({cols}, ord) ORDER BY ord), %s::text{requests}) "
                    "WITH ORDINALITY b(entity, features, ord)").format(
                        i=sql.Literal(i), null_test=null_test, cols=sql.SQL(", ").join(cols),
                        arrs=sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in keys), requests=requests))
                params += [entity] + arrays + [name]
                if req_params is not None:
                    params.append([_request_json(m, req_params) for m in merged])
            answers: Dict[str, List[Any]] = {t[0]: [None] * len(rows) for t in targets}
            if rows and calls:
                with conn.cursor() as cur:
                    cur.execute(sql.SQL(" UNION ALL ").join(calls), params)
                    for call, ord_, feats in cur.fetchall():
                        answers[targets[call][0]][ord_ - 1] = feats
        columns: Dict[str, List[Any]] = {}
        key_names: List[str] = []
        for _, _, keys, _ in targets:
            for k in keys:
                if k not in key_names:
                    key_names.append(k)
        for k in key_names:
            columns[k] = [r.get(k) for r in rows]
        dtypes: Dict[str, int] = {}
        short_names = [f for _, _, f, _ in plan.features]
        for ref, view, feat, oid in plan.features:
            is_transform = ref in plan.transforms
            name = feat if is_transform or not full_feature_names else f"{view}__{feat}"
            if (not full_feature_names or is_transform) and (short_names.count(feat) > 1 or feat in key_names):
                raise FeatureStoreError("42702", f'feature name "{feat}" is ambiguous',
                                        hint="Use full_feature_names=True." if not is_transform else
                                        "A transform's column is its name: rename the transform or the key.")
            values = []
            for a in answers[ref]:
                v = None
                if a is not None:
                    if is_transform:
                        v = _from_json(a.get(feat), oid)
                    else:
                        per_view = a.get(view)
                        if per_view is not None:
                            v = _from_json(per_view.get(feat), oid)
                values.append(v)
            columns[name] = values
            dtypes[name] = oid
        return OnlineResponse(columns, dtypes)

    @dataclass
    class _OnlinePlan:
        views: Dict[str, Tuple[str, List[str]]]  # view ref -> (entity, join keys)
        # transform ref -> (entity, join keys, request parameter names)
        transforms: Dict[str, Tuple[str, List[str], List[str]]]
        # (view ref or transform ref, view name or transform name, feature or transform name, type OID)
        features: List[Tuple[str, str, str, int]]

    def _has(self, conn: psycopg.Connection, lookup: str) -> bool:
        """Whether the server has an object (``lookup``: a to_regclass/to_regproc call), asked
        once per connection."""
        if self._server_has_conn is not conn:
            self._server_has, self._server_has_conn = {}, conn
        if lookup not in self._server_has:
            with conn.cursor() as cur:
                cur.execute(f"SELECT {lookup} IS NOT NULL")
                self._server_has[lookup] = bool(cur.fetchone()[0])  # type: ignore[index]
        return self._server_has[lookup]

    def _with_transforms(self, conn: psycopg.Connection, query: str) -> str:
        """``query`` as is, or for a server without transforms (feature_store 0.2) reading an
        empty ``fs_transforms`` (looked up once per connection)."""
        if self._has(conn, "to_regclass('fs_transforms')"):
            return query
        return query.replace("fs_transforms t", "(SELECT NULL::text AS name, NULL::int AS version, "
                             "NULL::bool AS is_latest, NULL::jsonb AS request, NULL::text[] AS inputs, "
                             "NULL::regtype AS returns WHERE false) t")

    def _resolve_online(self, conn: psycopg.Connection, refs: List[str],
                        rows: Sequence[Mapping[str, Any]] = ()) -> "FeatureStore._OnlinePlan":
        for r in refs:
            if not isinstance(r, str):
                raise FeatureStoreError("22004", "feature reference must not be null")
        if not refs:
            raise FeatureStoreError("22023", "features must name at least one feature")
        with conn.cursor() as cur:
            cur.execute(self._with_transforms(conn, _RESOLVE_SQL), {"refs": refs})
            result = cur.fetchall()
        views: Dict[str, Tuple[str, List[str]]] = {}
        transforms: Dict[str, Tuple[Optional[str], List[str], List[str]]] = {}
        feats: List[Tuple[str, str, str, int]] = []
        seen = set()
        for (ref, top, vref, view, version, entity, keys, feat, oid,
             tname, tversion, request, toid, tentity, tkeys) in result:
            if vref is None:
                raise FeatureStoreError("42704", f'feature service "{top}" does not exist')
            if ":" not in ref:  # a transform (named directly or by a service)
                if tname is None:
                    what = "feature service or transform" if ref == top else "transform"
                    raise FeatureStoreError("42704", f'{what} "{ref}" does not exist',
                                            hint="See SELECT name, version FROM fs_transforms.")
                if ("transform", tname) in seen:
                    raise FeatureStoreError("42710", f'transform "{tname}" is referenced more than once')
                seen.add(("transform", tname))
                transforms[ref] = (tentity, list(tkeys or []), list(request or {}))
                feats.append((ref, tname, tname, toid))
                continue
            if not vref or not ref.split(":", 1)[1] or ref.count(":") > 1:
                raise FeatureStoreError("22023", f'invalid feature reference "{ref}"',
                                        hint='Write "view:feature", "view:*", "view@N:feature" or a service name.')
            if view is None:
                raise FeatureStoreError("42704", f'feature view "{vref}" does not exist')
            if feat is None:
                raise FeatureStoreError("42704", f'feature "{ref.split(":", 1)[1]}" does not exist in feature view "{vref}"')
            if (view, version, feat) in seen:
                raise FeatureStoreError("42710", f'feature "{view}:{feat}" is referenced more than once')
            seen.add((view, version, feat))
            views[vref] = (entity, list(keys))
            feats.append((vref, view, feat, oid))
        # A transform without input features serves the same value for any entity: it is asked
        # for with the entity of the other features, else of any entity whose keys the rows carry.
        loose = [t for t, (e, _, _) in transforms.items() if e is None]
        if loose:
            known = [(e, k) for e, k in views.values()] + [(e, k) for e, k, _ in transforms.values() if e is not None]
            if not known:
                with conn.cursor() as cur:
                    cur.execute("SELECT entity, join_keys FROM fs_entities ORDER BY entity")
                    known = [(e, list(k)) for e, k in cur.fetchall()
                             if rows and all(any(key in r for r in rows) for key in k)]
            if not known:
                raise FeatureStoreError("42703", f'transform "{loose[0]}" has no input features, and the entity '
                                                 'rows carry the keys of no entity',
                                        hint="Give each row the keys of a registered entity.")
            for t in loose:
                transforms[t] = (known[0][0], list(known[0][1]), transforms[t][2])
        return FeatureStore._OnlinePlan(views, transforms, feats)  # type: ignore[arg-type]

    # -- materialization and push -------------------------------------------------------------
    def _online_view_names(self, views: Optional[Sequence[str]]) -> List[str]:
        if views is not None:
            return [views] if isinstance(views, str) else list(views)
        return [r[0] for r in self._query(
            "SELECT name FROM fs_views WHERE is_latest AND online_mode <> 'off' ORDER BY name")]

    def materialize(self, start_date: Union[_dt.datetime, str], end_date: Union[_dt.datetime, str],
                    views: Optional[Sequence[str]] = None) -> Dict[str, int]:
        """``fs_materialize(view, start, end)`` for each view (default: every online view).

        Each view commits on its own; returns ``{view: rows written}``. Naive datetimes are UTC;
        strings are read by the server (in the session's time zone unless they carry an offset).
        """
        out: Dict[str, int] = {}
        for v in self._online_view_names(views):
            t0 = time.monotonic()
            out[v] = self._query("SELECT fs_materialize(%s, %s::timestamptz, %s::timestamptz)",
                                 (v, _utc(start_date), _utc(end_date)))[0][0]
            if self._progress:
                sys.stderr.write(f"materialize {v}: {out[v]:,} rows, {time.monotonic() - t0:.1f} s\n")
        return out

    def materialize_incremental(self, views: Optional[Sequence[str]] = None) -> Dict[str, int]:
        """``fs_materialize_incremental(view)`` for each view (default: every online view)."""
        out: Dict[str, int] = {}
        for v in self._online_view_names(views):
            t0 = time.monotonic()
            out[v] = self._query("SELECT fs_materialize_incremental(%s)", (v,))[0][0]
            if self._progress:
                sys.stderr.write(f"materialize-incremental {v}: {out[v]:,} rows, {time.monotonic() - t0:.1f} s\n")
        return out

    def push(self, view: str, df: pd.DataFrame) -> int:
        """Appends ``df``'s rows to the source table of ``view`` (latest version, or ``view@N``) with COPY.

        ``df``'s columns are matched to the source's columns by name (every column of ``df``
        must exist there; the others take their defaults). A view in ``stream`` online mode
        serves the rows once this returns; otherwise they reach the online store at the next
        materialization. Returns the number of rows written.
        """
        with self._tx() as conn:
            with conn.cursor() as cur:
                name, _, version = view.partition("@")
                cur.execute("SELECT source FROM fs_views WHERE name = %s AND "
                            "CASE WHEN %s = '' THEN is_latest ELSE version::text = %s END",
                            (name, version, version))
                row = cur.fetchone()
                if row is None:
                    raise FeatureStoreError("42704", f'feature view "{view}" does not exist')
                source = row[0]
                cur.execute("SELECT a.attname, a.atttypid FROM pg_attribute a WHERE a.attrelid = %s::regclass "
                            "AND a.attnum > 0 AND NOT a.attisdropped", (source,))
                types = {r[0]: int(r[1]) for r in cur.fetchall()}
            cols = []
            for c in df.columns:
                if c not in types:
                    raise FeatureStoreError("42703", f'column "{c}" of the pushed frame does not exist in {source}')
                cols.append(tx.Column(str(c), types[c]))
            tx.copy_frame_in(conn, sql.SQL(source), df, cols)
        return len(df)

    # -- catalog ----------------------------------------------------------------------------
    def list_entities(self) -> List[Entity]:
        """Every registered entity (``fs_entities``), by name."""
        return [Entity(r[0], list(r[1]), None if r[2] is None else list(r[2]), r[3]) for r in self._query(
            "SELECT entity, join_keys, key_types::text[], description FROM fs_entities ORDER BY entity")]

    def list_views(self) -> List[FeatureView]:
        """The latest version of every feature view (``fs_views``), by name."""
        rows = self._query(
            "SELECT v.name, v.version, v.source, v.entity, v.join_keys, v.event_time::text, v.created_time::text, "
            "v.ttl, v.online_mode, v.checks, v.description, v.owner, v.tags, "
            "(SELECT coalesce(json_object_agg(f.feature, f.type::text ORDER BY f.position), '{}') "
            " FROM fs_features f WHERE f.view = v.name AND f.version = v.version) "
            "FROM fs_views v WHERE v.is_latest ORDER BY v.name")
        return [FeatureView(r[0], r[1], r[2], r[3], list(r[4]), r[5], r[6], r[7], r[8], dict(r[13]),
                            r[9] or {}, r[10], r[11], r[12] or {}) for r in rows]

    def list_feature_views(self) -> List[FeatureView]:
        """Feast's name for :meth:`list_views`."""
        return self.list_views()

    def list_services(self) -> List[FeatureService]:
        """The latest version of every feature service (``fs_services``), by name."""
        return [FeatureService(r[0], r[1], list(r[2]), r[3], r[4], r[5] or {}) for r in self._query(
            "SELECT name, version, features, description, owner, tags FROM fs_services "
            "WHERE is_latest ORDER BY name")]

    def list_feature_services(self) -> List[FeatureService]:
        """Feast's name for :meth:`list_services`."""
        return self.list_services()

    def get_view(self, name: str) -> FeatureView:
        """The latest version of one view; ``FeatureStoreError`` 42704 if there is none."""
        for v in self.list_views():
            if v.name == name:
                return v
        raise FeatureStoreError("42704", f'feature view "{name}" does not exist')

    def training_columns(self, spine: str, features: FeatureList, timestamp_column: str = "event_timestamp",
                         full_feature_names: bool = False) -> str:
        """``fs_training_columns``: the column definition list of a join over the relation ``spine``."""
        refs = [features] if isinstance(features, str) else list(features)
        return self._query("SELECT fs_training_columns(%s::regclass, %s::text[], %s, %s)",
                           (spine, refs, timestamp_column, full_feature_names))[0][0]

    def apply(self, definitions: Any, prune: bool = False) -> "Any":
        """Registers declarations (a YAML path, YAML text, or a dict); see :mod:`feature_store.definitions`."""
        from .definitions import apply as _apply
        return _apply(self, definitions, prune=prune, dry_run=False)

    def plan(self, definitions: Any, prune: bool = False) -> "Any":
        """What :meth:`apply` would change, computed in a transaction that is rolled back."""
        from .definitions import apply as _apply
        return _apply(self, definitions, prune=prune, dry_run=True)


def _utc(t: Union[_dt.datetime, str, pd.Timestamp]) -> Union[_dt.datetime, str]:
    if isinstance(t, str):
        return t
    if isinstance(t, pd.Timestamp):
        t = t.to_pydatetime()
    if t.tzinfo is None:
        return t.replace(tzinfo=_dt.timezone.utc)
    return t


def _key_text(v: Any) -> Optional[str]:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (np.integer,)):
        return str(int(v))
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _merge_requests(rows: List[Dict[str, Any]], request_data: Any) -> List[Dict[str, Any]]:
    """Each entity row with its request's parameters (the request's values win)."""
    if request_data is None:
        return rows
    if isinstance(request_data, pd.DataFrame):
        reqs = request_data.to_dict("records")
    elif isinstance(request_data, Mapping):
        cols = dict(request_data)
        for k, v in cols.items():
            if isinstance(v, (str, bytes)) or not hasattr(v, "__len__") or len(v) != len(rows):
                raise FeatureStoreError("22023", f'request_data column "{k}" must hold one value per entity row '
                                                 f'({len(rows)})',
                                        hint="Pass columns ({\"amount\": [...]}) or one mapping per row.")
        reqs = [{k: (v.iloc[i] if isinstance(v, pd.Series) else v[i]) for k, v in cols.items()}
                for i in range(len(rows))]
    else:
        reqs = [dict(r) for r in request_data]
    if len(reqs) != len(rows):
        raise FeatureStoreError("22023", f"request_data has {len(reqs)} requests for {len(rows)} entity rows",
                                hint="Pass one request per entity row.")
    return [{**r, **q} for r, q in zip(rows, reqs)]


def _json_value(v: Any) -> Any:
    """A request value as JSON (the server converts it to the parameter's type, as training
    converts a spine column): missing values (None, NaN, NaT, NA) are null; infinities the
    strings PostgreSQL reads; naive times UTC, as in training sets; Decimal its exact text."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if np.isnan(f):
            return None
        if np.isinf(f):
            return "Infinity" if f > 0 else "-Infinity"
        return f
    if isinstance(v, decimal.Decimal):
        return None if v.is_nan() else str(v)
    if isinstance(v, np.datetime64):
        v = pd.Timestamp(v)
        if v is pd.NaT:
            return None
    if isinstance(v, _dt.datetime):
        return v.isoformat() if v.tzinfo is not None else v.isoformat() + "+00:00"
    if isinstance(v, (_dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, Mapping):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_json_value(x) for x in v]
    if isinstance(v, str):
        return v
    return str(v)


def _request_json(row: Mapping[str, Any], params: Sequence[str]) -> str:
    """One row's request for a transform: its parameters only (the server refuses others)."""
    return json.dumps({p: _json_value(row[p]) for p in params if p in row})


def _from_json(v: Any, oid: int) -> Any:
    if v is None:
        return None
    if oid in (tx.FLOAT4, tx.FLOAT8, tx.NUMERIC) and isinstance(v, str):
        return float(v)  # NaN and infinities travel as strings in JSON
    if oid in (tx.TIMESTAMPTZ, tx.TIMESTAMP) and isinstance(v, str):
        return _dt.datetime.fromisoformat(v)
    if oid == tx.DATE and isinstance(v, str):
        return _dt.date.fromisoformat(v)
    if oid in (tx.FLOAT4, tx.FLOAT8, tx.NUMERIC) and isinstance(v, int):
        return float(v)
    return v


# The references with services expanded (m), and the transforms among them (t).
_EXPANDED_CTE = """
WITH r AS (SELECT ref FROM unnest(%(refs)s::text[]) ref),
m AS (
  SELECT r.ref FROM r WHERE strpos(r.ref, ':') > 0
     OR NOT EXISTS (SELECT FROM fs_services s WHERE s.name = split_part(r.ref, '@', 1))
  UNION ALL
  SELECT f FROM r JOIN fs_services s ON strpos(r.ref, ':') = 0
     AND s.name = split_part(r.ref, '@', 1)
     AND CASE WHEN strpos(r.ref, '@') > 0 THEN s.version::text = split_part(r.ref, '@', 2) ELSE s.is_latest END
  CROSS JOIN unnest(s.features) f
),
tr AS (
  SELECT t.* FROM m JOIN fs_transforms t ON strpos(m.ref, ':') = 0 AND t.name = split_part(m.ref, '@', 1)
     AND CASE WHEN strpos(m.ref, '@') > 0 THEN t.version::text = split_part(m.ref, '@', 2) ELSE t.is_latest END
)
"""

# Key columns of the entities of every view the references name (services expanded, and the
# inputs of transforms).
_SPINE_KEYS_SQL = _EXPANDED_CTE + """,
x AS (
  SELECT m.ref FROM m WHERE strpos(m.ref, ':') > 0
  UNION ALL
  SELECT i FROM tr CROSS JOIN unnest(tr.inputs) i
)
SELECT u.key, u.typ::oid::int, u.typ::text, min(u.i)
FROM x
JOIN fs_views v ON v.name = split_part(split_part(x.ref, ':', 1), '@', 1)
JOIN fs_entities e ON e.entity = v.entity
CROSS JOIN unnest(e.join_keys, e.key_types) WITH ORDINALITY u(key, typ, i)
WHERE u.typ IS NOT NULL
GROUP BY 1, 2, 3 ORDER BY 4, 1
"""

# Request parameters of the transforms the references name: (name, type OID, type), each name
# once (the first transform's type when two declare it).
_SPINE_REQUEST_SQL = _EXPANDED_CTE + """
SELECT DISTINCT ON (p.key) p.key, p.value::regtype::oid::int, p.value::regtype::text
FROM tr CROSS JOIN jsonb_each_text(tr.request) p
ORDER BY p.key
"""

# Each reference, services expanded into theirs, resolved to view version, entity and features;
# a name that is not a service, and a service's member without a colon, is a transform: its
# version, request parameters, result type, and the entity of its first input.
_RESOLVE_SQL = """
WITH r AS (SELECT ref, i FROM unnest(%(refs)s::text[]) WITH ORDINALITY u(ref, i)),
x AS (
  SELECT r.i, 0::bigint AS j, r.ref, r.ref AS top FROM r WHERE strpos(r.ref, ':') > 0
  UNION ALL
  SELECT r.i, coalesce(f.j, 0), CASE WHEN s.name IS NULL THEN r.ref ELSE f.ref END, r.ref FROM r
  LEFT JOIN fs_services s ON s.name = split_part(r.ref, '@', 1)
     AND CASE WHEN strpos(r.ref, '@') > 0 THEN s.version::text = split_part(r.ref, '@', 2) ELSE s.is_latest END
  LEFT JOIN LATERAL unnest(s.features) WITH ORDINALITY f(ref, j) ON true
  WHERE strpos(r.ref, ':') = 0
)
SELECT coalesce(x.ref, ''), x.top, split_part(x.ref, ':', 1), v.name, v.version, v.entity, v.join_keys,
       f.feature::text, f.type::oid::int,
       t.name, t.version, t.request, t.returns::oid::int, te.entity, te.join_keys
FROM x
LEFT JOIN fs_views v ON strpos(x.ref, ':') > 0 AND v.name = split_part(split_part(x.ref, ':', 1), '@', 1)
   AND CASE WHEN split_part(x.ref, ':', 1) LIKE '%%@%%'
            THEN v.version::text = split_part(split_part(x.ref, ':', 1), '@', 2) ELSE v.is_latest END
LEFT JOIN fs_features f ON f.view = v.name AND f.version = v.version
   AND split_part(x.ref, ':', 2) IN ('*', f.feature::text)
LEFT JOIN fs_transforms t ON strpos(x.ref, ':') = 0 AND t.name = split_part(x.ref, '@', 1)
   AND CASE WHEN strpos(x.ref, '@') > 0 THEN t.version::text = split_part(x.ref, '@', 2) ELSE t.is_latest END
LEFT JOIN LATERAL (
  SELECT tv.entity, tv.join_keys FROM unnest(t.inputs) WITH ORDINALITY u(input, k)
  JOIN fs_views tv ON tv.name = split_part(split_part(u.input, ':', 1), '@', 1)
   AND CASE WHEN split_part(u.input, ':', 1) LIKE '%%@%%'
            THEN tv.version::text = split_part(split_part(u.input, ':', 1), '@', 2) ELSE tv.is_latest END
  ORDER BY u.k LIMIT 1) te ON true
ORDER BY x.i, x.j, f.position
"""
