-- Foreign (postgres_fdw) partitions of a view's source. fs_views names them. Streaming over them
-- is refused, by fs_set_online_mode and, for partitions attached later, by an event trigger:
-- PostgreSQL would otherwise fail every INSERT routed to them ("cannot collect transition tuples
-- from child foreign tables"). Batch mode reads them. Every refusal changes nothing.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS feature_store;
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
SET timezone = 'UTC';
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
-- A loopback server: the "remote" tables live in this very database.
DO $$ BEGIN
  EXECUTE format('CREATE SERVER sf_loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %L, port %L, dbname %L)',
                 split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database());
  EXECUTE format('CREATE USER MAPPING FOR CURRENT_USER SERVER sf_loop OPTIONS (user %L)', current_user);
END $$;
CREATE TABLE sf_remote_data (uid int, ev timestamptz, x float8);
CREATE TABLE sf_remote_data2 (uid int, ev timestamptz, x float8);

-- A source with a local and a foreign partition.
CREATE TABLE sf_hist (uid int, ev timestamptz, x float8) PARTITION BY RANGE (uid);
CREATE TABLE sf_local PARTITION OF sf_hist FOR VALUES FROM (0) TO (100);
CREATE FOREIGN TABLE sf_remote PARTITION OF sf_hist FOR VALUES FROM (100) TO (200)
  SERVER sf_loop OPTIONS (table_name 'sf_remote_data');
SELECT fs_register_entity('sf_user', 'uid');
SELECT fs_register_view('sf_v', 'sf_hist', 'sf_user', 'ev');
-- A source without one, and a foreign table as the source itself.
CREATE TABLE sf2_hist (uid int, ev timestamptz, x float8) PARTITION BY RANGE (uid);
CREATE TABLE sf2_local PARTITION OF sf2_hist FOR VALUES FROM (0) TO (100);
SELECT fs_register_view('sf2_v', 'sf2_hist', 'sf_user', 'ev');
CREATE FOREIGN TABLE sf_ft (uid int, ev timestamptz, x float8) SERVER sf_loop OPTIONS (table_name 'sf_remote_data2');
SELECT fs_register_view('sf_ft_v', 'sf_ft', 'sf_user', 'ev');
SELECT name, source, foreign_partitions FROM fs_views WHERE name LIKE 'sf%' ORDER BY name;

-- Streaming over the foreign partition is refused, naming it: no trigger, no online table, the mode unchanged.
SELECT pg_temp.err($$SELECT fs_set_online_mode('sf_v', 'stream')$$);
SELECT online_mode, (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'sf_hist'::regclass) AS triggers,
       to_regclass(format('feature_store.online_%s', view_id)) AS online_table
FROM fs_views WHERE name = 'sf_v';
-- Batch mode works, and reads the foreign partition; INSERTs routed to it keep working.
SELECT fs_set_online_mode('sf_v', 'batch');
INSERT INTO sf_hist VALUES (1, '2026-01-01', 1), (150, '2026-01-01', 150);
SELECT count(*) AS remote_rows FROM sf_remote_data;
SELECT fs_materialize('sf_v', '2025-01-01', '2027-01-01');
SELECT fs_online('sf_user:1', 'sf_v') AS local_entity, fs_online('sf_user:150', 'sf_v') AS foreign_entity;
-- From batch to stream: refused the same way, the view stays in batch mode.
SELECT pg_temp.err($$SELECT fs_set_online_mode('sf_v', 'stream')$$);
SELECT online_mode FROM fs_views WHERE name = 'sf_v';
-- Detached, the source streams.
ALTER TABLE sf_hist DETACH PARTITION sf_remote;
SELECT foreign_partitions FROM fs_views WHERE name = 'sf_v';
SELECT fs_set_online_mode('sf_v', 'stream');

-- Attaching a foreign partition to a streaming source later is refused by the event trigger,
-- whichever way: ATTACH PARTITION, CREATE FOREIGN TABLE ... PARTITION OF, one level down, or a
-- partitioned table holding one. Each leaves the partition tree as it was.
SELECT pg_temp.err($$ALTER TABLE sf_hist ATTACH PARTITION sf_remote FOR VALUES FROM (100) TO (200)$$);
SELECT pg_temp.err($$CREATE FOREIGN TABLE sf_remote3 PARTITION OF sf_hist FOR VALUES FROM (200) TO (300)
  SERVER sf_loop OPTIONS (table_name 'sf_remote_data')$$);
CREATE TABLE sf_sub PARTITION OF sf_hist FOR VALUES FROM (300) TO (400) PARTITION BY RANGE (uid);
SELECT pg_temp.err($$CREATE FOREIGN TABLE sf_sub_remote PARTITION OF sf_sub FOR VALUES FROM (300) TO (350)
  SERVER sf_loop OPTIONS (table_name 'sf_remote_data')$$);
CREATE TABLE sf_tree (uid int, ev timestamptz, x float8) PARTITION BY RANGE (uid);
CREATE FOREIGN TABLE sf_tree_remote PARTITION OF sf_tree FOR VALUES FROM (400) TO (450)
  SERVER sf_loop OPTIONS (table_name 'sf_remote_data');
SELECT pg_temp.err($$ALTER TABLE sf_hist ATTACH PARTITION sf_tree FOR VALUES FROM (400) TO (500)$$);
SELECT relid, parentrelid, isleaf, level FROM pg_partition_tree('sf_hist') ORDER BY relid::text;
SELECT to_regclass('sf_remote3') AS sf_remote3, to_regclass('sf_sub_remote') AS sf_sub_remote;
-- Other DDL on the source, and on unrelated tables, is not refused; the source still streams.
ALTER TABLE sf_hist ADD COLUMN note text;
ALTER TABLE sf_tree ADD COLUMN note text;
INSERT INTO sf_hist VALUES (2, '2026-01-02', 2);
SELECT fs_online('sf_user:2', 'sf_v') AS streamed;
-- In batch mode the same ATTACH is allowed, and streaming is refused again.
SELECT fs_set_online_mode('sf_v', 'batch');
ALTER TABLE sf_hist ATTACH PARTITION sf_tree FOR VALUES FROM (400) TO (500);
SELECT foreign_partitions FROM fs_views WHERE name = 'sf_v';
SELECT pg_temp.err($$SELECT fs_set_online_mode('sf_v', 'stream')$$);
-- A foreign table as the source was already refused (not a table).
SELECT pg_temp.err($$SELECT fs_set_online_mode('sf_ft_v', 'stream')$$);

-- Another view streaming does not make the ATTACH to a batch view's source fail.
SELECT fs_set_online_mode('sf2_v', 'stream');
ALTER TABLE sf_hist DETACH PARTITION sf_tree;
ALTER TABLE sf_hist ATTACH PARTITION sf_tree FOR VALUES FROM (400) TO (500);
SELECT name, online_mode, foreign_partitions FROM fs_views WHERE name LIKE 'sf%' ORDER BY name;

SELECT fs_drop_view('sf_v');
SELECT fs_drop_view('sf2_v');
SELECT fs_drop_view('sf_ft_v');
DROP TABLE sf_hist, sf2_hist, sf_remote_data, sf_remote_data2;
DROP FOREIGN TABLE sf_remote, sf_ft;
DROP SERVER sf_loop CASCADE;
