-- Scheduled incremental materialization (src/schedule.c): one pg_cron job per feature view,
-- running as the role that scheduled it. Metadata, readable by everyone.
CREATE TABLE feature_store.schedule (
    view_name    text NOT NULL,      -- a view, or (skew_check) a view or service
    schedule     text NOT NULL,
    job_id       bigint NOT NULL,
    job_name     text NOT NULL,
    command      text NOT NULL,
    job_role     name NOT NULL,
    scheduled_at timestamptz NOT NULL DEFAULT now(),
    -- (0.3) what the job runs: incremental materialization, or fs_skew_check
    kind         text NOT NULL DEFAULT 'materialize' CHECK (kind IN ('materialize', 'skew_check')),
    PRIMARY KEY (view_name, kind)
);
GRANT SELECT ON feature_store.schedule TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('feature_store.schedule', '');

CREATE FUNCTION fs_schedule_materialization(view text, schedule text)
RETURNS bigint AS 'MODULE_PATHNAME', 'fs_schedule_materialization' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_schedule_materialization(text, text) IS
  'Creates or replaces the pg_cron job (named feature_store:<view>, run as the caller) that materializes the view incrementally; returns the job id';

CREATE FUNCTION fs_unschedule_materialization(view text)
RETURNS boolean AS 'MODULE_PATHNAME', 'fs_unschedule_materialization' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_unschedule_materialization(text) IS
  'Removes the view''s materialization job; false (with a notice) if it had none';

CREATE FUNCTION fs_schedule_skew_check(view_or_service text, schedule text, sample integer DEFAULT 1000)
RETURNS bigint AS 'MODULE_PATHNAME', 'fs_schedule_skew_check' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_schedule_skew_check(text, text, integer) IS
  'Creates or replaces the pg_cron job (named feature_store:skew:<name>, run as the caller) that runs fs_skew_check; returns the job id';

CREATE FUNCTION fs_unschedule_skew_check(view_or_service text)
RETURNS boolean AS 'MODULE_PATHNAME', 'fs_unschedule_skew_check' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION fs_unschedule_skew_check(text) IS
  'Removes the skew check job of a view or service; false (with a notice) if it had none';

CREATE VIEW fs_schedules AS
SELECT s.view_name AS view, s.schedule, s.job_id, s.job_name, s.command, s.job_role, s.scheduled_at,
       r.started_at AS last_run_at, r.outcome AS last_outcome, s.kind
FROM feature_store.schedule s
LEFT JOIN LATERAL (SELECT m.started_at, m.outcome FROM feature_store.materialization_run m
                   WHERE m.view_name = s.view_name AND m.kind = 'scheduled' AND s.kind = 'materialize'
                   ORDER BY m.run_id DESC LIMIT 1) r ON true;
COMMENT ON VIEW fs_schedules IS 'Scheduled jobs: materialization of each feature view (and its last scheduled run), skew checks';
GRANT SELECT ON fs_schedules TO PUBLIC;

-- DROP EXTENSION feature_store removes the extension's pg_cron jobs too (pg_cron's job table is
-- not ours, so the jobs would otherwise outlive the functions they call).
CREATE FUNCTION feature_store.drop_extension_cleanup() RETURNS event_trigger
  AS 'MODULE_PATHNAME', 'fs_schedule_drop_extension' LANGUAGE C;
CREATE EVENT TRIGGER feature_store_drop_extension ON ddl_command_start WHEN TAG IN ('DROP EXTENSION')
  EXECUTE FUNCTION feature_store.drop_extension_cleanup();
