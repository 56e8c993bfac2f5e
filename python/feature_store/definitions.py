"""Declarative definitions: a YAML file of entities, views, services (and transforms), applied
idempotently.

File format (every key but ``name`` optional unless noted)::

    entities:
      - name: driver
        join_keys: [driver_id]          # required; one or more columns
        key_types: [bigint]             # optional, fixed by the first view otherwise
        description: A taxi driver
    views:                              # alias: feature_views
      - name: driver_stats
        source: driver_hourly_stats     # required: table, view, ... (schema-qualified if needed)
        entity: driver                  # required
        event_time: event_timestamp
        created_time: created
        features: [conv_rate, acc_rate] # default: every other column
        ttl: 1 day                      # interval text, or seconds; null = forever
        online: true
        checks: {conv_rate: {min: 0, max: 1}}
        description: ..., owner: ..., tags: {team: ml}
      - name: user_spend                # an aggregation view (design section 8)
        source: purchases
        entity: user
        aggregations: ["avg(amount) over '7 days' as avg_7d", "count(*) over '1 hour' as n_1h"]
        filter: amount > 0
        hop: 1 hour
    services:                           # alias: feature_services
      - name: ride_model
        features: [driver_stats:conv_rate, customer_profile:current_balance]
    transforms:                         # on-demand features (design section 11)
      - name: amount_ratio
        expression: amount / nullif(avg_7d, 0)   # request parameters and inputs by bare name
        request: {amount: numeric}      # parameter name -> type; bound to spine columns in training
        inputs: [user_spend:avg_7d]     # view:feature or view@N:feature
        returns: float8                 # default: the expression's type
        description: ..., owner: ..., tags: {team: ml}

``apply`` registers everything in one transaction (entities, then views, then transforms, then
services, which may name transforms; the server decides whether a view, transform or service
changed and becomes version N+1) and reports, per object, ``create``, ``new version``, ``update``
(metadata changed in place) or ``unchanged``. Objects in the database but not in the file are
reported as ``remove`` and dropped only with ``prune=True`` (services first, then transforms,
then views, then entities). ``plan`` runs the same transaction and rolls it back, so what it
prints is exactly what ``apply`` would do. Aggregation views and transforms are rejected with
:class:`~feature_store.NotSupportedByServer` (SQLSTATE 0A000) when the connected server has no
SQL for them (feature_store before 0.3), before anything is registered.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import psycopg
import yaml

from .errors import FeatureStoreError, NotSupportedByServer

__all__ = ["load", "apply", "Change", "Plan"]

_TOP = {"entities": "entities", "views": "views", "feature_views": "views",
        "services": "services", "feature_services": "services", "transforms": "transforms"}
_ENTITY_KEYS = {"name", "join_keys", "join_key", "key_types", "description"}
_VIEW_KEYS = {"name", "source", "entity", "event_time", "created_time", "features", "ttl", "online",
              "checks", "description", "owner", "tags", "aggregations", "filter", "hop"}
_SERVICE_KEYS = {"name", "features", "description", "owner", "tags"}
_TRANSFORM_KEYS = {"name", "expression", "request", "inputs", "returns", "description", "owner", "tags"}


@dataclass(frozen=True)
class Change:
    """One object's outcome: ``action`` is create, new version, update, unchanged, remove (dropped
    with prune) or kept (registered, not in the definitions, not dropped: not a change)."""
    kind: str
    name: str
    action: str
    detail: str = ""

    def __str__(self) -> str:
        sign = {"create": "+", "new version": "~", "update": "~", "unchanged": "=", "remove": "-"}.get(self.action, "!")
        return f"{sign} {self.kind} {self.name}: {self.action}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Plan:
    """What ``apply`` did (or, for ``plan``, would do)."""
    changes: List[Change] = field(default_factory=list)
    applied: bool = False

    @property
    def changed(self) -> List[Change]:
        return [c for c in self.changes if c.action not in ("unchanged", "kept")]

    def __str__(self) -> str:
        lines = [str(c) for c in self.changes]
        n = len(self.changed)
        verb = "applied" if self.applied else "planned (nothing applied)"
        lines.append(f"{n} change{'s' if n != 1 else ''} {verb}" if n else
                     ("no changes" if self.applied else "no changes (nothing applied)"))
        return "\n".join(lines)


_DROP_ORDER = ["service", "transform", "view", "entity"]


def _bad(msg: str, hint: Optional[str] = None) -> FeatureStoreError:
    return FeatureStoreError("22023", msg, hint=hint)


def load(source: Union[str, os.PathLike, Mapping[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    """Reads and checks definitions: a path to a YAML file, YAML text, or an already parsed dict."""
    if isinstance(source, Mapping):
        doc: Any = dict(source)
    else:
        text = str(source)
        if isinstance(source, os.PathLike) or ("\n" not in text and os.path.exists(text)):
            with open(text, encoding="utf-8") as f:
                text = f.read()
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise _bad(f"definitions are not valid YAML: {e}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise _bad("definitions must be a YAML mapping with entities, views, services, transforms")
    out: Dict[str, List[Dict[str, Any]]] = {"entities": [], "views": [], "services": [], "transforms": []}
    allowed = {"entities": _ENTITY_KEYS, "views": _VIEW_KEYS, "services": _SERVICE_KEYS, "transforms": _TRANSFORM_KEYS}
    for key, items in doc.items():
        if key not in _TOP:
            raise _bad(f'unknown section "{key}" in definitions',
                       hint="Sections are entities, views (feature_views), services (feature_services), transforms.")
        section = _TOP[key]
        if items is None:
            continue
        if not isinstance(items, list):
            raise _bad(f'section "{key}" must be a list')
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise _bad(f'every item of "{key}" must be a mapping with a name')
            unknown = set(item) - allowed[section]
            if unknown:
                raise _bad(f'{section[:-1]} "{item["name"]}" has unknown keys: {", ".join(sorted(unknown))}')
            if any(o["name"] == item["name"] for o in out[section]):
                raise FeatureStoreError("42710", f'{section[:-1]} "{item["name"]}" is declared twice')
            out[section].append(item)
    for e in out["entities"]:
        if "join_key" in e:
            e.setdefault("join_keys", [e.pop("join_key")])
        if isinstance(e.get("join_keys"), str):
            e["join_keys"] = [e["join_keys"]]
        if not e.get("join_keys"):
            raise _bad(f'entity "{e["name"]}" needs join_keys')
    for v in out["views"]:
        for req in ("source", "entity"):
            if not v.get(req):
                raise _bad(f'view "{v["name"]}" needs {req}')
    for s in out["services"]:
        if not isinstance(s.get("features"), list) or not s["features"]:
            raise _bad(f'service "{s["name"]}" needs a list of features')
    for t in out["transforms"]:
        if not isinstance(t.get("expression"), str) or not t["expression"].strip():
            raise _bad(f'transform "{t["name"]}" needs an expression')
        if t.get("request") is not None and not isinstance(t["request"], dict):
            raise _bad(f'the request of transform "{t["name"]}" must be a mapping of parameter names to types',
                       hint="Write request: {amount: numeric}.")
        if isinstance(t.get("inputs"), str):
            t["inputs"] = [t["inputs"]]
        if t.get("inputs") is not None and not isinstance(t["inputs"], list):
            raise _bad(f'the inputs of transform "{t["name"]}" must be a list of view:feature references')
    return out


def _server_args(conn: psycopg.Connection, function: str) -> Optional[set]:
    """Argument names of a server function, or None when the server has no such function."""
    rows = conn.execute("SELECT proargnames FROM pg_proc WHERE proname = %s", (function,)).fetchall()
    if not rows:
        return None
    return {a for r in rows for a in (r[0] or [])}


def _check_supported(conn: psycopg.Connection, defs: Dict[str, List[Dict[str, Any]]]) -> None:
    version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'feature_store'").fetchone()
    ver = version[0] if version else "not installed"
    view_args = _server_args(conn, "fs_register_view") or set()
    for v in defs["views"]:
        extra = [k for k in ("aggregations", "filter", "hop") if k in v]
        if extra and not set(extra) <= view_args:
            raise NotSupportedByServer(
                f'aggregation view "{v["name"]}" is not supported by this server (feature_store {ver})',
                hint="Aggregation views (aggregations, filter, hop) need a feature_store version that "
                     "registers them; declare a latest-value view over a precomputed table instead.")
    if defs["transforms"] and _server_args(conn, "fs_register_transform") is None:
        raise NotSupportedByServer(
            f'transform "{defs["transforms"][0]["name"]}" is not supported by this server (feature_store {ver})',
            hint="On-demand transforms need a feature_store version with fs_register_transform.")


def _ttl(v: Any) -> Optional[str]:
    if v is None:
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{v} seconds"
    return str(v)


def _snapshot(conn: psycopg.Connection) -> Dict[Tuple[str, str], Tuple[Optional[int], str]]:
    """(kind, name) -> (latest version, the definition row as text), for every registered object."""
    snap: Dict[Tuple[str, str], Tuple[Optional[int], str]] = {}
    for name, row in conn.execute("SELECT entity, (to_jsonb(e) - 'created_at')::text FROM fs_entities e"):
        snap[("entity", name)] = (None, row)
    for name, ver, row in conn.execute(
            "SELECT name, version, (to_jsonb(v) - 'created_at' - 'view_id')::text || "
            "(SELECT coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.position), '[]')::text FROM fs_features f "
            " WHERE f.view = v.name AND f.version = v.version) FROM fs_views v WHERE is_latest"):
        snap[("view", name)] = (ver, row)
    for name, ver, row in conn.execute(
            "SELECT name, version, (to_jsonb(s) - 'created_at')::text FROM fs_services s WHERE is_latest"):
        snap[("service", name)] = (ver, row)
    if conn.execute("SELECT to_regclass('fs_transforms') IS NOT NULL").fetchone()[0]:
        for name, ver, row in conn.execute(
                "SELECT name, version, (to_jsonb(t) - 'created_at' - 'transform_id')::text "
                "FROM fs_transforms t WHERE is_latest"):
            snap[("transform", name)] = (ver, row)
    return snap


def _register(conn: psycopg.Connection, defs: Dict[str, List[Dict[str, Any]]]) -> None:
    for e in defs["entities"]:
        conn.execute("SELECT fs_register_entity(%s, %s::text[], %s, %s::regtype[])",
                     (e["name"], list(e["join_keys"]), e.get("description"), e.get("key_types")))
    for v in defs["views"]:
        args: Dict[str, Any] = {"name": v["name"], "source": v["source"], "entity": v["entity"]}
        casts = {"source": "regclass", "features": "text[]", "ttl": "interval", "online": "boolean",
                 "checks": "jsonb", "tags": "jsonb", "aggregations": "text[]", "hop": "interval"}
        for k in ("event_time", "created_time", "features", "online", "description", "owner",
                  "aggregations", "filter"):
            if k in v:
                args[k] = v[k]
        if "ttl" in v:
            args["ttl"] = _ttl(v["ttl"])
        if "hop" in v:
            args["hop"] = _ttl(v["hop"])
        for k in ("checks", "tags"):
            if k in v:
                args[k] = None if v[k] is None else json.dumps(v[k])
        named = ", ".join(f"{k} => %({k})s::{casts.get(k, 'text')}" for k in args)
        conn.execute(f"SELECT fs_register_view({named})", args)
    for t in defs["transforms"]:
        conn.execute("SELECT fs_register_transform(%s, %s, request => %s::jsonb, inputs => %s::text[], "
                     "returns => %s::regtype, description => %s, owner => %s, tags => %s::jsonb)",
                     (t["name"], t["expression"], json.dumps(t.get("request") or {}),
                      None if t.get("inputs") is None else [str(i) for i in t["inputs"]],
                      None if t.get("returns") is None else str(t["returns"]),
                      t.get("description"), t.get("owner"),
                      None if t.get("tags") is None else json.dumps(t["tags"])))
    for s in defs["services"]:
        conn.execute("SELECT fs_register_service(%s, %s::text[], %s, %s, %s::jsonb)",
                     (s["name"], [str(f) for f in s["features"]], s.get("description"), s.get("owner"),
                      None if s.get("tags") is None else json.dumps(s["tags"])))


def apply(store: Any, source: Union[str, os.PathLike, Mapping[str, Any]], prune: bool = False,
          dry_run: bool = False) -> Plan:
    """Applies (or with ``dry_run`` plans) definitions; see the module documentation."""
    defs = load(source)
    conn = store.connection
    plan = Plan()
    try:
        with conn.transaction(force_rollback=dry_run):
            _check_supported(conn, defs)
            before = _snapshot(conn)
            _register(conn, defs)
            declared = {("entity", e["name"]) for e in defs["entities"]} | \
                       {("view", v["name"]) for v in defs["views"]} | \
                       {("transform", t["name"]) for t in defs["transforms"]} | \
                       {("service", s["name"]) for s in defs["services"]}
            # Dependents first: services (which may name transforms), transforms (which read
            # views), views, entities.
            removed = sorted((k for k in before if k not in declared),
                             key=lambda k: (_DROP_ORDER.index(k[0]), k[1]))
            if prune:
                for kind, name in removed:
                    if kind == "service":
                        conn.execute("SELECT fs_drop_service(%s)", (name,))
                    elif kind == "transform":
                        conn.execute("SELECT fs_drop_transform(%s)", (name,))
                    elif kind == "view":
                        conn.execute("SELECT fs_drop_view(%s)", (name,))
                    else:
                        conn.execute("SELECT fs_drop_entity(%s)", (name,))
            after = _snapshot(conn)
    except psycopg.Error as e:
        raise FeatureStoreError.from_psycopg(e) from None
    for kind, section in (("entity", "entities"), ("view", "views"), ("transform", "transforms"),
                          ("service", "services")):
        for item in defs[section]:
            key = (kind, item["name"])
            old, new = before.get(key), after.get(key)
            if old is None:
                detail = f"version {new[0]}" if new and new[0] is not None else ""
                plan.changes.append(Change(kind, item["name"], "create", detail))
            elif new is not None and old[0] != new[0]:
                plan.changes.append(Change(kind, item["name"], "new version", f"{old[0]} -> {new[0]}"))
            elif new is not None and old[1] != new[1]:
                plan.changes.append(Change(kind, item["name"], "update", "metadata changed in place"))
            else:
                plan.changes.append(Change(kind, item["name"], "unchanged"))
    for kind, name in removed:
        if prune:
            plan.changes.append(Change(kind, name, "remove", "would be dropped" if dry_run else "dropped"))
        else:
            plan.changes.append(Change(kind, name, "kept", "not in the definitions; --prune drops it"))
    plan.applied = not dry_run
    return plan
