# Scheduled materialization really runs: pg_cron (preloaded, libpq mode) executes the job that
# fs_schedule_materialization created, as the role that scheduled it, and the job's
# fs_materialize_incremental fills the view's online table (compared with a brute-force oracle)
# and advances its watermark; a scheduled run is logged with kind 'scheduled'; a failing
# scheduled run is recorded in the run log (although its transaction rolled back, leaving the
# watermark and the online table untouched) and pg_cron sees the failure.
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
CREATE TABLE tap_hist (k int, ev timestamptz, cr timestamptz DEFAULT clock_timestamp(), x float8);
INSERT INTO tap_hist (k, ev, x) SELECT g % 100, '2026-01-01'::timestamptz + g * interval '1 minute', g FROM generate_series(1, 3000) g;
CREATE TABLE tap_fail_src (k int, ev timestamptz, x float8);
INSERT INTO tap_fail_src VALUES (1, '2026-01-01', 1);
CREATE ROLE tap_alice LOGIN;
GRANT SELECT ON tap_hist TO tap_alice;
GRANT USAGE ON SCHEMA cron TO tap_alice;
SELECT fs_register_entity('tap_k', 'k');
SELECT fs_register_view('tap_view', 'tap_hist', 'tap_k', 'ev', 'cr');
SELECT fs_register_view('tap_fail', 'tap_fail_src', 'tap_k', 'ev', checks => '{"x": {"min": 0}}');
SET ROLE tap_alice;
SELECT fs_register_view('tap_alice_view', 'tap_hist', 'tap_k', 'ev');
RESET ROLE;
-- the failing view: its source column no longer has the registered type
ALTER TABLE tap_fail_src ALTER COLUMN x TYPE numeric;
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

# The scheduled runs materialized the history: each online table equals the oracle.
my $oracle = q{SELECT DISTINCT ON (k) k, ev, x FROM tap_hist ORDER BY k, ev DESC, cr DESC NULLS LAST};
for my $view ('tap_view', 'tap_alice_view')
{
	my $tab = $node->safe_psql('fs', qq{SELECT format('feature_store.online_%s', view_id) FROM fs_views WHERE name = '$view'});
	is($node->safe_psql('fs', qq{SELECT count(*) FROM (($oracle) EXCEPT SELECT k, __event_ts, x FROM $tab) a})
	   . '/' . $node->safe_psql('fs', qq{SELECT count(*) FROM (SELECT k, __event_ts, x FROM $tab EXCEPT ($oracle)) b})
	   . '/' . $node->safe_psql('fs', qq{SELECT count(*) FROM $tab}),
	   '0/0/100', "scheduled run of $view materialized exactly the oracle's rows");
}
is($node->safe_psql('fs', q{SELECT string_agg(view || ':' || (watermark IS NOT NULL), ',' ORDER BY view) FROM fs_stat_views WHERE view LIKE 'tap%'}),
   'tap_alice_view:true,tap_fail:false,tap_view:true',
   'the watermark advanced with each successful run, not with the failed one');
is($node->safe_psql('fs', q{SELECT rows_online FROM fs_stat_views WHERE view = 'tap_fail'}), '0', 'the failed run wrote nothing');
is($node->safe_psql('fs', q{SELECT string_agg(DISTINCT view || ':' || CASE WHEN run_by = current_user THEN 'superuser' ELSE run_by END, ',')
                            FROM fs_runs WHERE kind = 'scheduled' AND outcome = 'success'}),
   'tap_alice_view:tap_alice,tap_view:superuser',
   'each job ran its view\'s materialization, as the role that scheduled it');

is($node->safe_psql('fs', q{
    SELECT string_agg(j.jobname || '=' || d.status, ',' ORDER BY j.jobname)
    FROM cron.job_run_details d JOIN cron.job j USING (jobid)
    WHERE d.runid = (SELECT min(runid) FROM cron.job_run_details x WHERE x.jobid = d.jobid)}),
   'feature_store:tap_alice_view=succeeded,feature_store:tap_fail=failed,feature_store:tap_view=succeeded',
   'pg_cron saw the failing run fail');
like($node->safe_psql('fs', q{SELECT return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                              WHERE j.jobname = 'feature_store:tap_fail' ORDER BY runid LIMIT 1}),
     qr/was registered with double precision/, 'with the original error');

is($node->safe_psql('fs', q{SELECT string_agg(view || ':' || kind || ':' || outcome || ':' || coalesce(sqlstate, '-'), ',' ORDER BY view)
                            FROM (SELECT DISTINCT view, kind, outcome, sqlstate FROM fs_runs) r}),
   'tap_alice_view:scheduled:success:-,tap_fail:scheduled:error:42804,tap_view:scheduled:success:-',
   'scheduled runs are logged as scheduled; the failed one is recorded despite its rollback');
is($node->safe_psql('fs', q{SELECT string_agg(view || ':' || (last_run_at IS NOT NULL) || ':' || coalesce(last_outcome, '-'), ',' ORDER BY view) FROM fs_schedules}),
   'tap_alice_view:true:success,tap_fail:true:error,tap_view:true:success',
   'fs_schedules shows the last scheduled run of each view');

# Unscheduling and dropping remove the jobs.
$node->safe_psql('fs', q{SELECT fs_unschedule_materialization('tap_view')});
$node->safe_psql('fs', q{SELECT fs_drop_view('tap_fail')});
$node->safe_psql('fs', q{SET ROLE tap_alice; SELECT fs_drop_view('tap_alice_view')});
is($node->safe_psql('fs', q{SELECT count(*) FROM cron.job}), '0', 'unschedule and drop remove the cron jobs');
is($node->safe_psql('fs', q{SELECT count(*) FROM fs_schedules}), '0', 'and the schedules');

$node->stop;
done_testing();
