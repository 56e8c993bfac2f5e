-- Serving calls inside a query the planner would parallelize: they must not raise "cannot update
-- SecondarySnapshot during a parallel operation" (a read-through takes a fresh snapshot), so they
-- are PARALLEL UNSAFE and such queries run serially (the plans below show no Gather); the answers
-- equal the online table's. (The error itself needs a cache miss inside a parallel query.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS feature_store;
CREATE TABLE par_hist (id bigint, ts timestamptz, v int);
INSERT INTO par_hist SELECT i, '2026-01-01', i * 10 FROM generate_series(1, 20000) i;
ANALYZE par_hist;
SELECT fs_register_entity('par_ent', 'id');
SELECT fs_register_view('par_v', 'par_hist', 'par_ent', event_time => 'ts');
SELECT fs_materialize('par_v', '-infinity', 'infinity');
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
-- without the serving call the plan is parallel, so the settings do make the planner try
EXPLAIN (COSTS OFF) SELECT count(*) FROM par_hist WHERE v > 0;
-- the serving call in an aggregate's argument: a restricted function would run in the leader
-- above a Gather, inside the parallel operation
EXPLAIN (COSTS OFF) SELECT sum(((fs_online(fs_entity('par_ent', h.id), 'par_v') -> 'par_v' ->> 'v')::int = h.v)::int) FROM par_hist h;
SELECT sum(((fs_online(fs_entity('par_ent', h.id), 'par_v') -> 'par_v' ->> 'v')::int = h.v)::int) AS matching FROM par_hist h;
SELECT sum((fs_online_vector(fs_entity('par_ent', h.id), 'par_v') = ARRAY[h.v::float8])::int) AS vectors FROM par_hist h;
SELECT count(*) AS batch_rows FROM par_hist h, fs_online_batch(ARRAY[fs_entity('par_ent', h.id)], 'par_v') b WHERE h.id <= 100;
RESET ALL;
DROP EXTENSION feature_store CASCADE;
DROP TABLE par_hist;
