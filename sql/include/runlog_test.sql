-- The run log's test drivers (src/runlog_test.c), which the extension does not declare: each test
-- that needs them declares them here, in schema fs_test, superuser only. Quiet when they exist.
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS fs_test;
GRANT USAGE ON SCHEMA fs_test TO PUBLIC;   -- the functions themselves are revoked below
-- runs work_sql as a logged run of the view (rows written = rows it processed), optionally
-- quarantining the window's failing rows; kind NULL: what an incremental run logs
CREATE OR REPLACE FUNCTION fs_test.run_logged_test(view text, kind text, work_sql text,
                                                   quarantine boolean DEFAULT false,
                                                   start_ts timestamptz DEFAULT NULL, end_ts timestamptz DEFAULT NULL)
RETURNS bigint AS 'feature_store', 'fs_run_logged_test' LANGUAGE C VOLATILE PARALLEL UNSAFE;
-- a statement trigger (NEW TABLE, argument: the view) logging each statement as a 'stream' run
CREATE OR REPLACE FUNCTION fs_test.stream_logged_test() RETURNS trigger
AS 'feature_store', 'fs_stream_logged_test' LANGUAGE C;
REVOKE ALL ON FUNCTION fs_test.run_logged_test(text, text, text, boolean, timestamptz, timestamptz),
                       fs_test.stream_logged_test() FROM PUBLIC;
RESET client_min_messages;
