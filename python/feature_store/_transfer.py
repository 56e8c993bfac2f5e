"""Moving pandas data in and out of PostgreSQL, vectorized (no Python work per row except text).

Upload (``copy_frame_in``): columns that are fixed-width and have no missing value (integers,
timestamps, floats, booleans) are sent in COPY's binary format, built as one numpy structured
array; anything else is sent in COPY's text format, built column by column with vectorized
string operations. Either way the server parses the values with the target columns' types.

Download (``select_to_frame``): not COPY TO, which costs one call into libpq per row on the
client with Debian's pure-Python psycopg, but one aggregate over the query: fixed-width binary
records (each value in PostgreSQL's send format) concatenated into one bytea and read by numpy,
plus one bytea of concatenated text per text column.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

# PostgreSQL type OIDs (stable, from pg_type.dat).
BOOL, INT8, INT2, INT4, TEXT, OID = 16, 20, 21, 23, 25, 26
FLOAT4, FLOAT8, BPCHAR, VARCHAR, NAME = 700, 701, 1042, 1043, 19
DATE, TIMESTAMP, TIMESTAMPTZ, NUMERIC, JSON, JSONB = 1082, 1114, 1184, 1700, 114, 3802

_INT_WIDTH = {INT2: 2, INT4: 4, INT8: 8}
_INT_DTYPE = {INT2: "Int16", INT4: "Int32", INT8: "Int64", OID: "Int64"}
_TEXT_TYPES = {TEXT, BPCHAR, VARCHAR, NAME}
# Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
_PG_EPOCH_US = 946_684_800_000_000


@dataclass(frozen=True)
class Column:
    """A result or target column: its name and type OID."""
    name: str
    type_oid: int


# ---------------------------------------------------------------------------------------------
# Upload

def _as_utc_ns(series: pd.Series, tz_aware_target: bool) -> np.ndarray:
    """datetime64[ns] values (UTC for a timestamptz target; naive values are read as UTC)."""
    s = series
    if not pd.api.types.is_datetime64_any_dtype(s):
        s = pd.to_datetime(s, utc=tz_aware_target)
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None) if tz_aware_target else s.dt.tz_localize(None)
    return s.to_numpy(dtype="datetime64[ns]")


def _integer_values(series: pd.Series) -> Optional[np.ndarray]:
    """The column as int64 when every value is a (non-missing) integer, else None."""
    if series.hasnans:
        return None
    if pd.api.types.is_integer_dtype(series.dtype) and not pd.api.types.is_unsigned_integer_dtype(series.dtype):
        return series.to_numpy(dtype=np.int64)
    if pd.api.types.is_unsigned_integer_dtype(series.dtype):
        v = series.to_numpy()
        if len(v) and v.max() > np.iinfo(np.int64).max:
            return None
        return v.astype(np.int64)
    if pd.api.types.is_float_dtype(series.dtype):
        v = series.to_numpy(dtype=np.float64)
        if np.all(np.isfinite(v)) and np.all(v == np.floor(v)) and (len(v) == 0 or np.abs(v).max() < 2**63):
            return v.astype(np.int64)
    return None


def _binary_field(series: pd.Series, type_oid: int):
    """(numpy dtype string, values) for COPY BINARY, or None when the column needs the text form."""
    if type_oid in _INT_WIDTH:
        v = _integer_values(series)
        if v is None:
            return None
        width = _INT_WIDTH[type_oid]
        info = np.iinfo({2: np.int16, 4: np.int32, 8: np.int64}[width])
        if len(v) and (v.min() < info.min or v.max() > info.max):
            return None  # out of range: the text form lets the server raise its own error
        return f">i{width}", v
    if type_oid in (TIMESTAMPTZ, TIMESTAMP):
        if pd.api.types.is_datetime64_any_dtype(series) and not series.hasnans:
            ns = _as_utc_ns(series, type_oid == TIMESTAMPTZ).astype(np.int64)
            # PostgreSQL keeps microseconds: nanoseconds are truncated (toward the past), as the
            # text form below does too.
            return ">i8", ns // 1000 - _PG_EPOCH_US
        return None
    if type_oid == FLOAT8 and pd.api.types.is_float_dtype(series.dtype) and not series.hasnans:
        return ">f8", series.to_numpy(dtype=np.float64)
    if type_oid == BOOL and pd.api.types.is_bool_dtype(series.dtype) and not series.hasnans:
        return "u1", series.to_numpy(dtype=np.uint8)
    return None


def _binary_rows(frame: pd.DataFrame, columns: Sequence[Column]) -> Optional[np.ndarray]:
    """The rows of COPY's binary format (without its header and trailer) as one numpy structured
    array, or None when a column needs the text form."""
    fields = []
    for c in columns:
        f = _binary_field(frame[c.name], c.type_oid)
        if f is None:
            return None
        fields.append(f)
    layout: List[tuple] = [("n", ">i2")]
    for i, (dt, _) in enumerate(fields):
        layout += [(f"l{i}", ">i4"), (f"v{i}", dt)]
    rows = np.empty(len(frame), dtype=np.dtype(layout))
    rows["n"] = len(fields)
    for i, (dt, values) in enumerate(fields):
        rows[f"l{i}"] = np.dtype(dt).itemsize
        rows[f"v{i}"] = values
    return rows


_COPY_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_COPY_BINARY_TRAILER = b"\xff\xff"
# Pieces of a large payload handed to psycopg at a time: views of numpy's memory, never one
# large bytes object (a fresh copy of tens of MB costs more than building the rows).
_WRITE_CHUNK = 1 << 20


_NULL = "\\N"


def _escape_text(values: pd.Series) -> pd.Series:
    s = values.astype(str)
    if s.str.contains(r"[\\\t\n\r]", regex=True).any():
        s = (s.str.replace("\\", "\\\\", regex=False).str.replace("\t", "\\t", regex=False)
              .str.replace("\n", "\\n", regex=False).str.replace("\r", "\\r", regex=False))
    return s


def _text_field(series: pd.Series, type_oid: int) -> pd.Series:
    """The column as COPY text-format fields (already escaped; NULL as \\N)."""
    missing = series.isna().to_numpy()
    if type_oid in (TIMESTAMPTZ, TIMESTAMP) or pd.api.types.is_datetime64_any_dtype(series):
        tz = type_oid != TIMESTAMP
        ns = _as_utc_ns(series, tz)
        text = np.datetime_as_string(ns.astype("datetime64[us]"), unit="us")
        out = pd.Series(text, index=series.index, dtype=object)
        if tz:
            out = out + "+00"
    elif pd.api.types.is_bool_dtype(series.dtype):
        out = series.map({True: "t", False: "f"})
    elif pd.api.types.is_integer_dtype(series.dtype):
        out = series.astype(str)
    elif pd.api.types.is_float_dtype(series.dtype) and type_oid in _INT_WIDTH:
        # An integer column that pandas holds as float because of missing values.
        v = series.to_numpy(dtype=np.float64, na_value=np.nan)
        integral = np.isfinite(v) & (v == np.floor(v)) & (np.abs(v) < 2**63)
        out = pd.Series([str(int(x)) if ok else repr(x) for x, ok in zip(v.tolist(), integral.tolist())],
                        index=series.index, dtype=object)
    elif pd.api.types.is_float_dtype(series.dtype):
        v = series.to_numpy(dtype=np.float64, na_value=np.nan)
        # repr of a float64 is its shortest exact decimal form; the server reads it back exactly.
        out = pd.Series([repr(x) for x in v.tolist()], index=series.index, dtype=object)
        out = out.where(np.isfinite(v), np.where(np.isinf(v), np.where(v > 0, "Infinity", "-Infinity"), _NULL))
    else:
        def conv(x: Any) -> str:
            if isinstance(x, (dict, list)):
                return json.dumps(x)
            if isinstance(x, bool):
                return "t" if x else "f"
            if isinstance(x, pd.Timestamp):
                return x.isoformat()
            return str(x)
        out = _escape_text(series.map(conv, na_action="ignore").fillna(""))
    out = out.astype(object)
    out[missing] = _NULL
    return out


def copy_frame_in(conn: psycopg.Connection, table: sql.Composable, frame: pd.DataFrame,
                  columns: Sequence[Column]) -> None:
    """COPY ``frame``'s ``columns`` (in that order) into ``table``."""
    ident = sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    rows = _binary_rows(frame, columns) if len(frame) else None
    with conn.cursor() as cur:
        if rows is not None:
            data = memoryview(rows.view(np.uint8))
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(table, ident)) as cp:
                cp.write(_COPY_BINARY_HEADER)
                for i in range(0, len(data), _WRITE_CHUNK):
                    cp.write(data[i:i + _WRITE_CHUNK])
                cp.write(_COPY_BINARY_TRAILER)
            return
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, ident)) as cp:
            if not len(frame):
                return
            parts = [_text_field(frame[c.name], c.type_oid) for c in columns]
            lines = parts[0].str.cat(parts[1:], sep="\t") if len(parts) > 1 else parts[0]
            chunk = 200_000  # bounded memory for the encoded text
            for i in range(0, len(lines), chunk):
                cp.write(("\n".join(lines.iloc[i:i + chunk].tolist()) + "\n").encode())


# ---------------------------------------------------------------------------------------------
# Download
#
# One aggregate per column over the query (two for an integer column: its values and its NULL
# flags), each a bytea that numpy reads without a loop in Python:
#   integers          int8send of the value (0 for NULL), plus one byte per row: 1 for NULL
#   float4/8, numeric float8send of the value as float8, NaN for NULL (pandas has no other NULL)
#   boolean           one byte per row: 0 false, 1 true, 2 NULL
#   timestamp(tz)     the send format (microseconds since 2000), -infinity for NULL: NaT either way
#   date              date_send (days since 2000), -infinity for NULL: NaT either way
#   text, other       the values in UTF-8 (other types in their JSON form), separated by a zero
#                     byte (text cannot hold one); NULL is the single byte 0xff, never in UTF-8
# A row count travels too (a query with no columns, or only text ones).

_NUL, _FF = b"\x00", b"\xff"
_BINARY_KINDS = {INT2, INT4, INT8, OID, FLOAT4, FLOAT8, NUMERIC, BOOL, TIMESTAMPTZ, TIMESTAMP, DATE}
_PLACEHOLDER = {TIMESTAMPTZ: "'-infinity'::timestamptz", TIMESTAMP: "'-infinity'::timestamp", DATE: "'-infinity'::date"}


def _aggregates(col: Column) -> List[sql.Composable]:
    """The aggregates (one or two) that carry ``col`` (see above)."""
    c = sql.Identifier(col.name)
    t = col.type_oid
    if t in (INT2, INT4, INT8, OID):
        return [sql.SQL("string_agg(int8send(coalesce({0}::int8, 0)), ''::bytea)").format(c),
                sql.SQL("string_agg(CASE WHEN {0} IS NULL THEN {1} ELSE {2} END, ''::bytea)").format(
                    c, sql.Literal(b"\x01"), sql.Literal(b"\x00"))]
    if t in (FLOAT4, FLOAT8, NUMERIC):
        return [sql.SQL("string_agg(float8send(coalesce({0}::float8, 'NaN'::float8)), ''::bytea)").format(c)]
    if t == BOOL:
        return [sql.SQL("string_agg(CASE WHEN {0} THEN {1} WHEN NOT {0} THEN {2} ELSE {3} END, ''::bytea)").format(
            c, sql.Literal(b"\x01"), sql.Literal(b"\x00"), sql.Literal(b"\x02"))]
    if t in (TIMESTAMPTZ, TIMESTAMP, DATE):
        fn = {TIMESTAMPTZ: "timestamptz_send", TIMESTAMP: "timestamp_send", DATE: "date_send"}[t]
        return [sql.SQL("string_agg({1}(coalesce({0}, {2})), ''::bytea)").format(
            c, sql.SQL(fn), sql.SQL(_PLACEHOLDER[t]))]
    return [sql.SQL("string_agg(coalesce(convert_to({0}, 'UTF8'), {1}), {2})").format(
        _text_expr(col), sql.Literal(_FF), sql.Literal(_NUL))]


def _text_expr(col: Column) -> sql.Composable:
    c = sql.Identifier(col.name)
    if col.type_oid in _TEXT_TYPES or col.type_oid in (JSON, JSONB):
        return sql.SQL("{0}::text").format(c)
    return sql.SQL("to_jsonb({0})::text").format(c)


def _timestamps(us: np.ndarray, t: int) -> pd.Series:
    """Microseconds (days for a date) since 2000-01-01 as datetime64[ns] (UTC for timestamptz)."""
    if t == DATE:
        d = us.astype(np.int64)
        bad = (d == np.iinfo(np.int32).min) | (d == np.iinfo(np.int32).max)
        us = d * 86_400_000_000
    else:
        us = us.astype(np.int64)
        bad = (us == np.iinfo(np.int64).min) | (us == np.iinfo(np.int64).max)
    # PostgreSQL counts microseconds from 2000-01-01; pandas nanoseconds from 1970 (years
    # 1677-2262): NULL (sent as -infinity), infinities and values out of that range become NaT.
    lo = np.iinfo(np.int64).min // 1000 + 1 - _PG_EPOCH_US
    hi = np.iinfo(np.int64).max // 1000 - _PG_EPOCH_US
    bad |= (us < lo) | (us > hi)
    ns = np.where(bad, np.iinfo(np.int64).min, (np.where(bad, 0, us) + _PG_EPOCH_US) * 1000)
    out = pd.Series(ns.view("datetime64[ns]"))
    return out.dt.tz_localize("UTC") if t == TIMESTAMPTZ else out


def _texts(col: Column, data: bytes, n: int) -> pd.Series:
    """Zero-separated UTF-8 values (0xff for NULL) as an object Series (None for NULL)."""
    if n == 0:
        return pd.Series(np.empty(0, dtype=object), dtype=object)
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(raw == 0)
    if len(ends) != n - 1:
        raise psycopg.DataError(f"column {col.name}: {len(ends) + 1} text values for {n} rows")
    starts = np.concatenate(([0], ends + 1))
    ends = np.concatenate((ends, [len(raw)]))
    null = ends - starts == 1
    null[null] = raw[starts[null]] == 0xFF
    # Decoded in one call and split in C; invalid UTF-8 (possible only from a SQL_ASCII
    # database) is kept as surrogate escapes instead of failing.
    values = np.empty(n, dtype=object)
    values[:] = data.decode("utf-8", "surrogateescape").split("\x00")
    values[null] = None
    if col.type_oid not in _TEXT_TYPES:
        # JSON forms: one json.loads per value (lists and dicts are not split into columns).
        return pd.Series([None if v is None else json.loads(v) for v in values.tolist()], dtype=object)
    return pd.Series(values, dtype=object)


def _decode(col: Column, parts: List[Optional[bytes]], n: int) -> pd.Series:
    t = col.type_oid
    data = parts[0] or b""
    width = {BOOL: 1, DATE: 4}.get(t, 8)
    if t in _BINARY_KINDS and len(data) != n * width:
        raise psycopg.DataError(f"column {col.name}: {len(data)} bytes for {n} rows")
    if t in (INT2, INT4, INT8, OID):
        dtype = pd.Series([], dtype=_INT_DTYPE[t]).dtype
        mask = np.frombuffer(parts[1] or b"", dtype=np.uint8)
        if len(mask) != n:
            raise psycopg.DataError(f"column {col.name}: {len(mask)} NULL flags for {n} rows")
        values = np.frombuffer(data, dtype=">i8").astype(dtype.numpy_dtype)
        return pd.Series(pd.arrays.IntegerArray(values, mask.astype(bool)))
    if t in (FLOAT4, FLOAT8, NUMERIC):
        return pd.Series(np.frombuffer(data, dtype=">f8").astype(np.float32 if t == FLOAT4 else np.float64))
    if t == BOOL:
        b = np.frombuffer(data, dtype=np.uint8)
        return pd.Series(pd.arrays.BooleanArray(b == 1, b == 2))
    if t in (TIMESTAMPTZ, TIMESTAMP, DATE):
        return _timestamps(np.frombuffer(data, dtype=">i4" if t == DATE else ">i8"), t)
    return _texts(col, data, n)


def select_to_frame(conn: psycopg.Connection, query: sql.Composable, columns: Sequence[Column],
                    progress: Optional[Callable[[int], None]] = None) -> pd.DataFrame:
    """Runs ``query`` and returns its ``columns`` as a typed DataFrame, in the query's row order.

    ``columns`` are the query's columns to fetch with their type OIDs (from :func:`describe`).
    COPY TO would cost one call into libpq per row on the client (Debian's psycopg is the
    pure-Python build: about 15 us per row); instead the rows come back as one row of
    aggregates over the query, one bytea per column (two for an integer column), each read by
    numpy (see the comment above). A bytea is at most 1 GB: about 130 million rows of an
    8-byte column, or 1 GB of text in one text column.
    """
    aggs: List[sql.Composable] = [sql.SQL("count(*)")]
    where: List[Tuple[int, int]] = []
    for c in columns:
        a = _aggregates(c)
        where.append((len(aggs), len(a)))
        aggs += a
    # A plain aggregate over the query consumes its rows in the query's order, the same order
    # for every aggregate of the SELECT (callers that cannot rely on the query's order fetch a
    # row number and check it).
    select = sql.SQL("SELECT {} FROM ({}) q").format(sql.SQL(", ").join(aggs), query)
    with conn.cursor(binary=True) as cur:
        cur.execute(select)
        rec = cur.fetchone()
    assert rec is not None
    n = int(rec[0])
    if progress is not None:
        progress(n)
    out: Dict[str, pd.Series] = {}
    for c, (i, k) in zip(columns, where):
        out[c.name] = _decode(c, list(rec[i:i + k]), n)
    return pd.DataFrame(out, index=pd.RangeIndex(n))


def describe(conn: psycopg.Connection, query: sql.Composable) -> List[Column]:
    """The columns (names and type OIDs) of a query, without fetching its rows."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT * FROM ({}) q LIMIT 0").format(query))
        assert cur.description is not None
        return [Column(d.name, d.type_code) for d in cur.description]


# ---------------------------------------------------------------------------------------------
# Download from fs_training_set_columns: the server builds one bytea per column as the join emits
# its rows (docs/reference.md gives the encoding), so no aggregate runs over the join's result.

# Types that encoding carries as the dtypes above promise; any other type makes the caller use
# select_to_frame (its values are wanted in their JSON form, which the columns carry as text).
COLUMNAR_TYPES = {INT2, INT4, INT8, OID, FLOAT4, FLOAT8, NUMERIC, BOOL, TIMESTAMPTZ, TIMESTAMP, DATE,
                  JSON, JSONB} | _TEXT_TYPES
_FIXED = {BOOL: "u1", INT2: ">i2", INT4: ">i4", OID: ">u4", INT8: ">i8", FLOAT4: ">f4", FLOAT8: ">f8",
          DATE: ">i4", TIMESTAMP: ">i8", TIMESTAMPTZ: ">i8"}


def _columnar(name: str, t: int, data: bytes, nulls: Optional[bytes], n: int) -> pd.Series:
    null = np.frombuffer(nulls, dtype=np.uint8).astype(bool) if nulls is not None else np.zeros(n, dtype=bool)
    if len(null) != n:
        raise psycopg.DataError(f"column {name}: {len(null)} NULL flags for {n} rows")
    if t in _FIXED:
        dt = np.dtype(_FIXED[t])
        if len(data) != n * dt.itemsize:
            raise psycopg.DataError(f"column {name}: {len(data)} bytes for {n} rows")
        v = np.frombuffer(data, dtype=dt)
        if t in (INT2, INT4, INT8, OID):
            dtype = pd.Series([], dtype=_INT_DTYPE[t]).dtype
            return pd.Series(pd.arrays.IntegerArray(v.astype(dtype.numpy_dtype), null))
        if t in (FLOAT4, FLOAT8):
            f = v.astype(np.float32 if t == FLOAT4 else np.float64)
            if nulls is not None:
                f[null] = np.nan
            return pd.Series(f)
        if t == BOOL:
            return pd.Series(pd.arrays.BooleanArray(v == 1, null))
        us = v.astype(np.int64)
        if nulls is not None:
            # NULL reads as -infinity, which _timestamps makes NaT
            us[null] = np.iinfo(np.int32).min if t == DATE else np.iinfo(np.int64).min
        return _timestamps(us, t)
    # each value's text output and a zero byte
    if n == 0:
        return pd.Series(np.empty(0, dtype=object), dtype=object)
    if not data.endswith(_NUL):
        raise psycopg.DataError(f"column {name}: the last value has no terminating zero byte")
    parts = data[:-1].decode("utf-8", "surrogateescape").split("\x00")
    if len(parts) != n:
        raise psycopg.DataError(f"column {name}: {len(parts)} values for {n} rows")
    values = np.empty(n, dtype=object)
    values[:] = parts
    values[null] = None
    if t == NUMERIC:
        f = np.full(n, np.nan)
        ok = ~null
        f[ok] = np.asarray(values[ok].tolist(), dtype=np.float64)
        return pd.Series(f)
    if t in (JSON, JSONB):
        return pd.Series([None if v is None else json.loads(v) for v in values.tolist()], dtype=object)
    return pd.Series(values, dtype=object)


def training_columns_to_frame(rows: Sequence[Tuple[str, int, int, bytes, Optional[bytes]]]) -> Optional[pd.DataFrame]:
    """The rows of fs_training_set_columns (name, type OID, row count, values, nulls) as a typed
    DataFrame; None when a column's type is not in COLUMNAR_TYPES."""
    if any(r[1] not in COLUMNAR_TYPES for r in rows):
        return None
    n = int(rows[0][2]) if rows else 0
    out: Dict[str, pd.Series] = {}
    for name, t, count, data, nulls in rows:
        if int(count) != n:
            raise psycopg.DataError(f"column {name}: {count} rows, other columns {n}")
        out[name] = _columnar(name, t, bytes(data), None if nulls is None else bytes(nulls), n)
    return pd.DataFrame(out, index=pd.RangeIndex(n))
