# Scheduled materialization really runs: pg_cron (preloaded, libpq mode) executes the job that
# fs_schedule_materialization created, as the role that scheduled it; a scheduled run is
# logged with kind 'scheduled'; a failing scheduled run is recorded in the run log (although
# its transaction rolled back) and pg_cron sees the failure.
#
# STUB: fs_materialize_incremental(text) does not exist yet (it comes with the online store).
# The test creates a stand-in under the same name in the extension's schema, which the job
# calls; it records each call and drives the run log through feature_store.run_logged_test.
# When the real function lands, drop the stub and check the view's online table instead.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('schedule');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron, feature_store'
cron.database_name = 'fs'
cron.host = '@{[ $node->host ]}'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE fs');
my $su = $node->safe_psql('fs', 'SELECT current_user');

$node->safe_psql('fs', q{
CREATE EXTENSION feature_store;
CREATE EXTENSION pg_cron;
CREATE TABLE tap_hist (k int, ev timestamptz, x float8);
CREATE TABLE tap_sink (view text, run_as name, at timestamptz DEFAULT clock_timestamp());
CREATE ROLE tap_alice LOGIN;
GRANT SELECT ON tap_hist TO tap_alice;
GRANT INSERT ON tap_sink TO tap_alice;
GRANT USAGE ON SCHEMA cron TO tap_alice;
SELECT fs_register_entity('tap_k', 'k');
SELECT fs_register_view('tap_view', 'tap_hist', 'tap_k', 'ev');
SELECT fs_register_view('tap_fail', 'tap_hist', 'tap_k', 'ev');
SET ROLE tap_alice;
SELECT fs_register_view('tap_alice_view', 'tap_hist', 'tap_k', 'ev');
RESET ROLE;

-- STUB standing in for the real incremental materialization (see the header).
CREATE FUNCTION public.fs_materialize_incremental(v text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.tap_sink (view, run_as) VALUES (v, current_user);
    IF v = 'tap_view' THEN
        RETURN feature_store.run_logged_test(v, NULL, 'SELECT 1');
    ELSIF v = 'tap_fail' THEN
        RETURN feature_store.run_logged_test(v, NULL, 'SELECT 1/0');
    END IF;
    RETURN 0;
END $$;
});

# Every minute (pg_cron's shortest cron period here), as the superuser and as alice.
$node->safe_psql('fs', q{SELECT fs_schedule_materialization('tap_view', '* * * * *')});
$node->safe_psql('fs', q{SELECT fs_schedule_materialization('tap_fail', '* * * * *')});
$node->safe_psql('fs', q{SET ROLE tap_alice; SELECT fs_schedule_materialization('tap_alice_view', '* * * * *')});
is($node->safe_psql('fs', q{SELECT string_agg(jobname || ' as ' || CASE WHEN username = current_user THEN 'superuser' ELSE username END, ', ' ORDER BY jobname) FROM cron.job}),
   'feature_store:tap_alice_view as tap_alice, feature_store:tap_fail as superuser, feature_store:tap_view as superuser',
   'one cron job per view, owned by the role that scheduled it');

# Wait for pg_cron to run all three (at the next minute boundary).
ok($node->poll_query_until('fs', q{
    SELECT count(DISTINCT jobid) = 3 FROM cron.job_run_details WHERE status IN ('succeeded', 'failed')}),
   'pg_cron ran the scheduled jobs');

is($node->safe_psql('fs', q{SELECT string_agg(DISTINCT view || ':' || run_as, ',' ORDER BY view || ':' || run_as) FROM tap_sink WHERE view <> 'tap_fail'}),
   "tap_alice_view:tap_alice,tap_view:$su",
   'each job ran its view\'s materialization, as the role that scheduled it');
is($node->safe_psql('fs', q{SELECT count(*) FROM tap_sink WHERE view = 'tap_fail'}),
   '0', 'the failed job\'s own writes were rolled back');

is($node->safe_psql('fs', q{
    SELECT string_agg(j.jobname || '=' || d.status, ',' ORDER BY j.jobname)
    FROM cron.job_run_details d JOIN cron.job j USING (jobid)
    WHERE d.runid = (SELECT min(runid) FROM cron.job_run_details x WHERE x.jobid = d.jobid)}),
   'feature_store:tap_alice_view=succeeded,feature_store:tap_fail=failed,feature_store:tap_view=succeeded',
   'pg_cron saw the failing run fail');
like($node->safe_psql('fs', q{SELECT return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                              WHERE j.jobname = 'feature_store:tap_fail' ORDER BY runid LIMIT 1}),
     qr/division by zero/, 'with the original error');

is($node->safe_psql('fs', q{SELECT string_agg(view || ':' || kind || ':' || outcome || ':' || coalesce(sqlstate, '-'), ',' ORDER BY view)
                            FROM (SELECT DISTINCT view, kind, outcome, sqlstate FROM fs_runs) r}),
   'tap_fail:scheduled:error:22012,tap_view:scheduled:success:-',
   'scheduled runs are logged as scheduled; the failed one is recorded despite its rollback');
is($node->safe_psql('fs', q{SELECT string_agg(view || ':' || (last_run_at IS NOT NULL) || ':' || coalesce(last_outcome, '-'), ',' ORDER BY view) FROM fs_schedules}),
   'tap_alice_view:false:-,tap_fail:true:error,tap_view:true:success',
   'fs_schedules shows the last scheduled run of each view');

# Unscheduling and dropping remove the jobs.
$node->safe_psql('fs', q{SELECT fs_unschedule_materialization('tap_view')});
$node->safe_psql('fs', q{SELECT fs_drop_view('tap_fail')});
$node->safe_psql('fs', q{SET ROLE tap_alice; SELECT fs_drop_view('tap_alice_view')});
is($node->safe_psql('fs', q{SELECT count(*) FROM cron.job}), '0', 'unschedule and drop remove the cron jobs');
is($node->safe_psql('fs', q{SELECT count(*) FROM fs_schedules}), '0', 'and the schedules');

$node->stop;
done_testing();
