-- feature_store 0.2 -> 0.3. Every change to src/*.sql since 0.2 has its ALTER/CREATE here, in the
-- same order; test/t/070_upgrade.pl compares the catalog of an updated database with a fresh install.
\echo Use "ALTER EXTENSION feature_store UPDATE TO '0.3'" to load this file. \quit

-- issue 13 part 3 (statistics belong to their database): cache figures of views without any
-- are zero, not NULL (a database the cache does not serve has none).
CREATE OR REPLACE VIEW fs_stat_views AS
SELECT v.name AS view, v.version, v.online_mode, w.watermark,
       ls.finished_at AS last_success_at,
       pg_catalog.now() - c.newest_event AS freshness,
       c.quarantined AS rows_quarantined,
       c.rows_online,
       c.newest_event,
       s.schedule,
       lr.outcome AS last_outcome, lr.kind AS last_kind, lr.started_at AS last_run_at, lr.error AS last_error,
       coalesce(o.hits, 0) AS hits, coalesce(o.misses, 0) AS misses,
       CASE WHEN o.hits + o.misses > 0 THEN round(o.hits::numeric / (o.hits + o.misses), 4) END AS cache_hit_rate
FROM feature_store.feature_view v
LEFT JOIN feature_store.watermark w ON w.view_id = v.view_id
LEFT JOIN feature_store.schedule s ON s.view_name = v.name
LEFT JOIN LATERAL (SELECT m.started_at + m.duration AS finished_at FROM feature_store.materialization_run m
                   WHERE m.view_id = v.view_id AND m.outcome = 'success'
                   ORDER BY m.run_id DESC LIMIT 1) ls ON true
LEFT JOIN LATERAL (SELECT m.outcome, m.kind, m.started_at, m.error FROM feature_store.materialization_run m
                   WHERE m.view_id = v.view_id ORDER BY m.run_id DESC LIMIT 1) lr ON true
LEFT JOIN LATERAL feature_store.view_counts(v.view_id) c ON true
LEFT JOIN (SELECT f.view, f.version, f.hits, f.misses FROM fs_stat_online_fn() f WHERE f.view IS NOT NULL) o
       ON o.view = v.name AND o.version = v.version
WHERE v.version = (SELECT max(x.version) FROM feature_store.feature_view x WHERE x.name = v.name);
