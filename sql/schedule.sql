-- Scheduling with pg_cron: one job per view, run as the role that scheduled it; replace,
-- unschedule, ownership, bad input, the clear error without pg_cron, and skew check jobs. (That
-- a job really runs is proven by the TAP test test/t/020_schedule.pl: pg_cron's minimum period is a minute.)
-- Schedules here never fire during the test (January 1st).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS feature_store;

\i sql/include/err.sql

CREATE TABLE sch_hist (k int, ev timestamptz, x float8, y float8);
SELECT fs_register_entity('sch_k', 'k');
SELECT fs_register_view('sch_view', 'sch_hist', 'sch_k', 'ev');

-- Without pg_cron in the database: a clear error that says how to enable it.
DROP EXTENSION IF EXISTS pg_cron;
SELECT * FROM pg_temp.err($$SELECT fs_schedule_materialization('sch_view', '0 3 1 1 *')$$);
SELECT fs_unschedule_materialization('sch_view');

CREATE EXTENSION pg_cron;
SELECT fs_schedule_materialization('sch_view', '0 3 1 1 *') AS job \gset
SELECT view, schedule, job_id = :job AS job_matches, job_name, command, job_role = current_user AS runs_as_me,
       last_run_at, last_outcome FROM fs_schedules;
SELECT jobname, schedule, command, database = current_database() AS this_db, username = current_user AS runs_as_me, active
FROM cron.job WHERE jobid = :job;
-- Replace: same job, new schedule, still one job.
SELECT fs_schedule_materialization('sch_view', '15 4 1 1 *') = :job AS same_job;
SELECT count(*) AS jobs, min(schedule) AS schedule FROM cron.job WHERE jobname = 'feature_store:sch_view';
SELECT schedule FROM fs_schedules WHERE view = 'sch_view';

-- Bad input.
SELECT * FROM pg_temp.err($$SELECT fs_schedule_materialization(NULL, '0 3 1 1 *')$$);
SELECT * FROM pg_temp.err($$SELECT fs_schedule_materialization('sch_view', NULL)$$);
SELECT * FROM pg_temp.err($$SELECT fs_schedule_materialization('no_view', '0 3 1 1 *')$$);
SELECT * FROM pg_temp.err($$SELECT fs_schedule_materialization('sch_view@1', '0 3 1 1 *')$$);
SELECT * FROM pg_temp.err($$SELECT fs_schedule_materialization('sch_view', 'every hour')$$);
SELECT * FROM pg_temp.err($$SELECT fs_schedule_materialization('sch_view', '61 * * * *')$$);
SELECT * FROM pg_temp.err($$SELECT fs_schedule_materialization('sch_view', '')$$);
SELECT * FROM pg_temp.err($$SELECT fs_unschedule_materialization(NULL)$$);
SELECT * FROM pg_temp.err($$SELECT fs_unschedule_materialization('no_view')$$);
-- failed calls changed nothing
SELECT count(*) AS jobs, min(schedule) AS schedule FROM cron.job WHERE jobname LIKE 'feature_store:%';

-- Roles: only the registering role, its members, or a superuser may schedule; the job runs
-- as whoever scheduled it; pg_cron must be usable by that role.
CREATE ROLE regress_sch_alice;
CREATE ROLE regress_sch_bob;
CREATE ROLE regress_sch_eve;
GRANT SELECT ON sch_hist TO regress_sch_alice, regress_sch_bob, regress_sch_eve;
GRANT regress_sch_alice TO regress_sch_bob;
GRANT USAGE ON SCHEMA cron TO regress_sch_alice, regress_sch_bob;
SET ROLE regress_sch_alice;
SELECT fs_register_view('sch_alice', 'sch_hist', 'sch_k', 'ev');
SELECT fs_schedule_materialization('sch_alice', '0 5 1 1 *') > 0 AS scheduled;
SELECT jobname, schedule, username FROM cron.job;
RESET ROLE;
SET ROLE regress_sch_eve;
SELECT * FROM pg_temp.err($$SELECT fs_schedule_materialization('sch_alice', '0 6 1 1 *')$$);
SELECT * FROM pg_temp.err($$SELECT fs_unschedule_materialization('sch_alice')$$);
-- eve owns her view but may not use pg_cron
SELECT fs_register_view('sch_eve', 'sch_hist', 'sch_k', 'ev');
SELECT * FROM pg_temp.err($$SELECT fs_schedule_materialization('sch_eve', '0 6 1 1 *')$$);
SELECT fs_drop_view('sch_eve');
RESET ROLE;
-- Bob (a member of alice) reschedules: alice's job is replaced by one that runs as bob.
SET ROLE regress_sch_bob;
SELECT fs_schedule_materialization('sch_alice', '0 6 1 1 *') > 0 AS scheduled;
RESET ROLE;
SELECT jobname, schedule, username FROM cron.job WHERE jobname = 'feature_store:sch_alice';
SELECT view, schedule, job_role FROM fs_schedules WHERE view = 'sch_alice';
-- The owner cannot schedule what it may not read: the job would only fail.
REVOKE SELECT ON sch_hist FROM regress_sch_alice;
SET ROLE regress_sch_alice;
SELECT * FROM pg_temp.err($$SELECT fs_schedule_materialization('sch_alice', '0 7 1 1 *')$$);
-- ...but may still unschedule (alice removes bob's job); a second time there is nothing to do.
SELECT fs_unschedule_materialization('sch_alice');
SET client_min_messages = notice;
SELECT fs_unschedule_materialization('sch_alice');
SET client_min_messages = warning;
RESET ROLE;
SELECT count(*) AS jobs FROM cron.job WHERE jobname = 'feature_store:sch_alice';
SELECT count(*) AS schedules FROM fs_schedules WHERE view = 'sch_alice';

-- A job removed behind feature_store's back: rescheduling creates a new one.
SELECT cron.unschedule(:job);
SELECT fs_schedule_materialization('sch_view', '0 3 1 1 *') <> :job AS new_job;
SELECT count(*) AS jobs FROM cron.job WHERE jobname = 'feature_store:sch_view';

-- Dropping one version keeps the schedule (it follows the latest version); dropping the
-- view removes its job and its schedule.
SELECT fs_register_view('sch_view', 'sch_hist', 'sch_k', 'ev', features => '{x}');
SELECT fs_drop_view('sch_view@1');
SELECT count(*) AS jobs FROM cron.job WHERE jobname = 'feature_store:sch_view';
SELECT fs_drop_view('sch_view');
SELECT count(*) AS jobs FROM cron.job WHERE jobname = 'feature_store:sch_view';
SELECT count(*) AS schedules FROM fs_schedules;

-- Skew checks: a job per view or service, beside the view's materialization job; the command
-- calls fs_skew_check with the sample; rescheduling replaces; dropping the service removes it.
SELECT fs_register_service('sch_svc', ARRAY['sch_alice:x']);
SELECT fs_schedule_materialization('sch_alice', '0 8 1 1 *') > 0 AS scheduled;
SELECT fs_schedule_skew_check('sch_alice', '0 9 1 1 *') AS skew_job \gset
SELECT fs_schedule_skew_check('sch_alice', '0 10 1 1 *', sample => 50) = :skew_job AS same_job;
SELECT fs_schedule_skew_check('sch_svc', '0 11 1 1 *') > 0 AS scheduled;
SELECT view, kind, schedule, job_name, command FROM fs_schedules ORDER BY view, kind;
SELECT jobname, schedule, command FROM cron.job ORDER BY jobname;
SELECT * FROM pg_temp.err($$SELECT fs_schedule_skew_check('no_view', '0 9 1 1 *')$$);
SELECT * FROM pg_temp.err($$SELECT fs_schedule_skew_check('sch_alice@1', '0 9 1 1 *')$$);
SELECT * FROM pg_temp.err($$SELECT fs_schedule_skew_check('sch_alice', '0 9 1 1 *', 0)$$);
SELECT * FROM pg_temp.err($$SELECT fs_schedule_skew_check('sch_alice', NULL)$$);
SET ROLE regress_sch_eve;
SELECT * FROM pg_temp.err($$SELECT fs_schedule_skew_check('sch_alice', '0 9 1 1 *')$$);
SELECT * FROM pg_temp.err($$SELECT fs_unschedule_skew_check('sch_svc')$$);
RESET ROLE;
SELECT fs_unschedule_skew_check('sch_alice');
SET client_min_messages = notice;
SELECT fs_unschedule_skew_check('sch_alice');
SET client_min_messages = warning;
SELECT fs_drop_service('sch_svc');
SELECT view, kind FROM fs_schedules ORDER BY view, kind;
SELECT jobname FROM cron.job ORDER BY jobname;

-- pg_cron dropped while a schedule exists: unscheduling still cleans up feature_store's side.
DROP EXTENSION pg_cron;
SELECT fs_unschedule_materialization('sch_alice');
SELECT count(*) AS schedules FROM fs_schedules;

SELECT fs_drop_view('sch_alice');
SELECT fs_drop_entity('sch_k');
DROP TABLE sch_hist;
DROP ROLE regress_sch_alice, regress_sch_bob, regress_sch_eve;

-- Leave the database as found: the registry tests create the extension themselves.
DROP EXTENSION feature_store;
