"""Moving pandas data in and out of PostgreSQL with COPY, vectorized (no Python loop per row).

Upload (``copy_frame_in``): columns that are fixed-width and have no missing value (integers,
timestamps, floats, booleans) are sent in COPY's binary format, built as one numpy structured
array; anything else is sent in COPY's text format, built column by column with vectorized
string operations. Either way the server parses the values with the target columns' types.

Download (``select_to_frame``): the query runs inside ``COPY (...) TO STDOUT (FORMAT csv)`` and
pandas' C parser reads the result. Each column is first rewritten in SQL into a form that parses
exactly and fast: timestamps as integer microseconds since the Unix epoch, text with a one-byte
prefix (so that NULL and the empty string stay distinct), anything without a native pandas dtype
as JSON text.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

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


def _binary_payload(frame: pd.DataFrame, columns: Sequence[Column]) -> Optional[bytes]:
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
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    return header + rows.tobytes() + b"\xff\xff"


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
    payload = _binary_payload(frame, columns) if len(frame) else None
    with conn.cursor() as cur:
        if payload is not None:
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(table, ident)) as cp:
                cp.write(payload)
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

_INTEGRAL = (INT2, INT4, INT8, OID, TIMESTAMPTZ, TIMESTAMP, DATE)


def _value_expr(col: Column) -> sql.Composable:
    c = sql.Identifier(col.name)
    t = col.type_oid
    if t in (BOOL, INT2, INT4, INT8, OID, FLOAT4, FLOAT8, NUMERIC):
        return c
    if t in (TIMESTAMPTZ, TIMESTAMP):
        # Integer microseconds since the Unix epoch: exact, and parsed as integers.
        return sql.SQL("CASE WHEN isfinite({0}) THEN (extract(epoch FROM {0}) * 1000000)::int8 END").format(c)
    if t == DATE:
        return sql.SQL("CASE WHEN isfinite({0}) THEN {0} - date '1970-01-01' END").format(c)
    if t in _TEXT_TYPES or t in (JSON, JSONB):
        # The prefix keeps NULL (an empty field) apart from the empty string.
        return sql.SQL("'x' || {0}::text").format(c)
    return sql.SQL("'x' || to_jsonb({0})::text").format(c)


def _select_exprs(col: Column) -> List[sql.Composable]:
    """The CSV fields of a column. Integers (and times, sent as integers) come as a value that is
    never NULL plus a NULL flag: pandas' parser reads a nullable integer column through float64,
    which would round values beyond 2**53."""
    v = _value_expr(col)
    if col.type_oid in _INTEGRAL:
        return [sql.SQL("coalesce({}, 0)").format(v), sql.SQL("({}) IS NULL").format(v)]
    return [v]


def _csv_dtypes(col: Column) -> List[Any]:
    t = col.type_oid
    if t in _INTEGRAL:
        return [np.int64, bool]
    if t == BOOL:
        return ["boolean"]
    if t in (FLOAT4, FLOAT8, NUMERIC):
        return [np.float64]
    return [object]


def _finish(col: Column, fields: List[pd.Series]) -> pd.Series:
    """Turns the parsed CSV field(s) of a column into the column's pandas form."""
    t = col.type_oid
    s = fields[0]
    if t in _INTEGRAL:
        values = s.to_numpy(dtype=np.int64)
        mask = fields[1].to_numpy(dtype=bool)
        if t in _INT_DTYPE:
            dtype = pd.Series([], dtype=_INT_DTYPE[t]).dtype
            return pd.Series(pd.arrays.IntegerArray(values.astype(dtype.numpy_dtype), mask), index=s.index)
        if t == DATE:
            ns = values * 86_400_000_000_000
        else:
            ns = values * 1000
        ns = np.where(mask, np.iinfo(np.int64).min, ns)  # int64 min is NaT
        out = pd.Series(ns.view("datetime64[ns]"), index=s.index)
        return out.dt.tz_localize("UTC") if t == TIMESTAMPTZ else out
    if t == FLOAT4:
        return s.astype(np.float32)
    if t in _TEXT_TYPES:
        return _strip_prefix(s, lambda v: v)
    if t in (BOOL, FLOAT8, NUMERIC):
        return s
    return _strip_prefix(s, json.loads)


def _strip_prefix(s: pd.Series, conv: Callable[[str], Any]) -> pd.Series:
    values = s.to_numpy(dtype=object)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = None if not isinstance(v, str) else conv(v[1:])
    return pd.Series(out, index=s.index, dtype=object)


def select_to_frame(conn: psycopg.Connection, query: sql.Composable, columns: Sequence[Column],
                    progress: Optional[Callable[[int], None]] = None) -> pd.DataFrame:
    """Runs ``SELECT <columns> FROM (query) q`` through COPY and returns a typed DataFrame.

    ``columns`` are the query's columns to fetch with their type OIDs (from :func:`describe`).
    """
    exprs: List[sql.Composable] = []
    names: List[List[str]] = []
    dtypes: Dict[str, Any] = {}
    for i, c in enumerate(columns):
        fs = _select_exprs(c)
        exprs += fs
        names.append([f"c{i}_{j}" for j in range(len(fs))])
        dtypes.update(zip(names[-1], _csv_dtypes(c)))
    select = sql.SQL("COPY (SELECT {} FROM ({}) q) TO STDOUT (FORMAT csv)").format(
        sql.SQL(", ").join(exprs), query)
    buf = io.BytesIO()
    with conn.cursor() as cur:
        with cur.copy(select) as cp:
            n = 0
            for block in cp:
                buf.write(block)
                if progress is not None:
                    n += bytes(block).count(b"\n")
                    progress(n)
    buf.seek(0)
    flat = [n for ns in names for n in ns]
    if buf.getbuffer().nbytes == 0:
        raw = pd.DataFrame({n: pd.Series([], dtype=dtypes[n]) for n in flat})
    else:
        raw = pd.read_csv(buf, header=None, names=flat, dtype=dtypes,
                          keep_default_na=False, na_values=["", "NaN"], true_values=["t"], false_values=["f"],
                          float_precision="round_trip", low_memory=False)
    return pd.DataFrame({c.name: _finish(c, [raw[n] for n in ns]) for c, ns in zip(columns, names)})


def describe(conn: psycopg.Connection, query: sql.Composable) -> List[Column]:
    """The columns (names and type OIDs) of a query, without fetching its rows."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT * FROM ({}) q LIMIT 0").format(query))
        assert cur.description is not None
        return [Column(d.name, d.type_code) for d in cur.description]
