# Every database, not one: with the default feature_store.databases ('*'), two databases that
# hold the extension (dba, dbb; pg_cron lives in a third, crondb) are both cached and both
# scheduled, and stay correct under concurrent writes in each. Known answers come from the
# source tables (what the writers committed, and when COMMIT returned), never from the store:
#   - both databases get a cache worker, and fs_stat_online of each shows its own hits;
#   - the same view (same internal view_id) holds different values in each: every read returns
#     its own database's values (a version tag per database), never the other's;
#   - under 4 writers and 8 readers per database at once (stream mode, random aborts): no read
#     returns an aborted version, a torn row, or a version older than a commit that had
#     returned before the read started (read-after-commit, per database);
#   - a materialization scheduled in each (cron.schedule_in_database, run from crondb) runs in
#     each and fills exactly the oracle's rows; unscheduling removes the job at commit, a
#     rolled-back schedule leaves no job, a role without the grant gets 42501 with a hint;
#   - a third database gaining the extension later gets a worker; DROP EXTENSION stops it and
#     its re-created view is served its new values; DROP DATABASE (without FORCE) succeeds
#     while its worker runs (the worker leaves).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('multidb');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron, feature_store'
cron.database_name = 'crondb'
cron.host = '@{[ $node->host ]}'
feature_store.worker_naptime = '100ms'
feature_store.cache_size = '1MB'
max_worker_processes = 24
max_connections = 60
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE crondb');
$node->safe_psql('crondb', 'CREATE EXTENSION pg_cron');
my %tag = (dba => 1, dbb => 2);
for my $db ('dba', 'dbb')
{
	my $t = $tag{$db};
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
CREATE EXTENSION feature_store;
-- streamed view s: the race; versions end in the database's tag digit
CREATE TABLE shist (id bigint, ts timestamptz, v bigint, w bigint);
INSERT INTO shist SELECT i, 'epoch'::timestamptz, $t, $t FROM generate_series(1, 10) i;
SELECT fs_register_entity('sent', 'id');
SELECT fs_register_view('s', 'shist', 'sent', event_time => 'ts');
SELECT fs_set_online_mode('s', 'stream');
CREATE TABLE committed (id bigint, ver bigint);
INSERT INTO committed SELECT i, $t FROM generate_series(1, 10) i;
CREATE UNLOGGED TABLE commit_done (id bigint, ver bigint, at timestamptz);
CREATE UNLOGGED TABLE attempts (id bigint, ver bigint);
CREATE UNLOGGED TABLE reads (id bigint, v bigint, w bigint, started timestamptz);
-- batch view b: scheduled materialization; x = k * 10 + tag
CREATE TABLE bh (k bigint, ev timestamptz, cr timestamptz DEFAULT clock_timestamp(), x bigint);
INSERT INTO bh (k, ev, x) SELECT g % 50, '2026-01-01'::timestamptz + g * interval '1 minute', (g % 50) * 10 + $t FROM generate_series(1, 500) g;
SELECT fs_register_entity('bk', 'k');
SELECT fs_register_view('b', 'bh', 'bk', 'ev', 'cr');
});
}
is($node->safe_psql('dba', q{SELECT view_id FROM feature_store.feature_view WHERE name = 's'}),
   $node->safe_psql('dbb', q{SELECT view_id FROM feature_store.feature_view WHERE name = 's'}),
   'the view has the same internal view_id in both databases');

# 1. Both databases are cached: a worker each, idle, and their own hits.
for my $db ('dba', 'dbb')
{
	ok($node->poll_query_until($db, q{SELECT worker_state = 'idle' AND worker_pid IS NOT NULL FROM fs_stat_online WHERE view IS NULL}),
	   "$db: its cache worker runs");
	is($node->safe_psql($db, q{SELECT string_agg((fs_online(fs_entity('sent', i)) -> 's' ->> 'v'), ',' ORDER BY i) FROM generate_series(1, 3) i}),
	   join(',', ($tag{$db}) x 3), "$db: its own values");
	$node->safe_psql($db, q{SELECT fs_online(fs_entity('sent', i)) FROM generate_series(1, 10) i});
	cmp_ok($node->safe_psql($db, q{SELECT hits FROM fs_stat_online WHERE view = 's'}), '>', 0, "$db: fs_stat_online shows hits");
}
my $workers = q{SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_stat_activity WHERE backend_type = 'feature_store cache worker'};
is($node->safe_psql('postgres', $workers), 'dba,dbb', 'one cache worker per database with the extension (none in postgres or crondb)');

# 2. Scheduling in each database, from crondb.
for my $db ('dba', 'dbb')
{
	$node->safe_psql($db, q{SELECT fs_schedule_materialization('b', '* * * * *')});
}
is($node->safe_psql('crondb', q{SELECT string_agg(jobname || ' in ' || database, ', ' ORDER BY jobname) FROM cron.job}),
   'feature_store@dba:b in dba, feature_store@dbb:b in dbb', 'one job per database, run in that database');
is($node->safe_psql('dba', q{SELECT job_name FROM fs_schedules}), 'feature_store@dba:b', 'fs_schedules names the job');

# 3. The race in both databases at once (as in 013, per database).
my $dir = PostgreSQL::Test::Utils::tempdir;
for my $db ('dba', 'dbb')
{
	my $t = $tag{$db};
	open my $r, '>', "$dir/reader_$db.sql" or die;
	print $r q{\set k random(1, 3)
INSERT INTO reads SELECT :k, (f -> 's' ->> 'v')::bigint, (f -> 's' ->> 'w')::bigint, s
FROM (SELECT clock_timestamp() AS s, fs_online(fs_entity('sent', :k)) AS f OFFSET 0) x;
};
	close $r;
	open my $w, '>', "$dir/writer_$db.sql" or die;
	print $w qq{\\set k random(1, 3)
\\set commit random(0, 2)
\\set pause random(0, 3)
SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint * 10 + $t AS ver \\gset
INSERT INTO attempts VALUES (:k, :ver);
BEGIN;
INSERT INTO shist VALUES (:k, 'epoch'::timestamptz + (:ver / 10) * interval '1 microsecond', :ver, :ver);
INSERT INTO committed VALUES (:k, :ver);
\\sleep :pause ms
\\if :commit
COMMIT;
INSERT INTO commit_done VALUES (:k, :ver, clock_timestamp());
\\else
ROLLBACK;
\\endif
};
	close $w;
}
my (%h, %out);
for my $db ('dba', 'dbb')
{
	my @conn = ('-h', $node->host, '-p', $node->port, $db);
	$out{"w$db"} = '';
	$out{"r$db"} = '';
	$h{"w$db"} = IPC::Run::start(['pgbench', '-n', '-c', '4', '-j', '1', '-T', '12', '-f', "$dir/writer_$db.sql", @conn],
		'>', \$out{"w$db"}, '2>', \$out{"w$db"});
	$h{"r$db"} = IPC::Run::start(['pgbench', '-n', '-c', '8', '-j', '2', '-T', '10', '-f', "$dir/reader_$db.sql", @conn],
		'>', \$out{"r$db"}, '2>', \$out{"r$db"});
}
$_->finish for values %h;
for my $db ('dba', 'dbb')
{
	my $t = $tag{$db};
	like($out{"r$db"}, qr/number of failed transactions: 0/, "$db: readers ran without errors") or diag($out{"r$db"});
	like($out{"w$db"}, qr/number of failed transactions: 0/, "$db: writers ran without errors") or diag($out{"w$db"});
	my ($nreads, $ncommits) = split /\|/, $node->safe_psql($db, q{SELECT (SELECT count(*) FROM reads), (SELECT count(*) FROM commit_done)});
	cmp_ok($nreads, '>', 500, "$db: enough reads ($nreads)");
	cmp_ok($ncommits, '>', 30, "$db: enough commits ($ncommits)");
	is($node->safe_psql($db, qq{SELECT count(*) FROM reads WHERE v IS NULL OR w IS NULL OR v % 10 <> $t}), '0',
	   "$db: every read found the entity, with a version of this database (never the other's)");
	is($node->safe_psql($db, q{SELECT count(*) FROM reads r WHERE NOT EXISTS (SELECT 1 FROM committed c WHERE c.id = r.id AND c.ver = r.v)}),
	   '0', "$db: no read returned a value of an aborted transaction");
	is($node->safe_psql($db, q{SELECT count(*) FROM reads WHERE v <> w}), '0', "$db: no torn rows");
	is($node->safe_psql($db, q{SELECT count(*) FROM reads r WHERE EXISTS (SELECT 1 FROM commit_done d WHERE d.id = r.id AND d.ver > r.v AND d.at < r.started)}),
	   '0', "$db: no read older than a commit that had returned before it started");
	my ($hits, $misses) = split /\|/, $node->safe_psql($db, q{SELECT hits, misses FROM fs_stat_online WHERE view = 's'});
	cmp_ok($hits, '>', 100, "$db: the cache served reads (hits $hits, misses $misses)");
	is($node->safe_psql($db, q{SELECT count(*) FROM generate_series(1, 10) i
		WHERE (fs_online(fs_entity('sent', i)) -> 's' ->> 'v')::bigint IS DISTINCT FROM
		      (SELECT v FROM shist WHERE id = i ORDER BY ts DESC LIMIT 1)}), '0', "$db: final answers equal the source's latest rows");
}

# Read-after-commit across databases, step by step: a commit in dba is served in dba by the
# next statement, and dbb's answer for the same key does not move.
for my $step (1 .. 5)
{
	my $before_b = $node->safe_psql('dbb', q{SELECT fs_online(fs_entity('sent', 7)) -> 's' ->> 'v'});
	$node->safe_psql('dba', qq{INSERT INTO shist VALUES (7, now() + interval '$step day', 900 + $step, 900 + $step)});
	is($node->safe_psql('dba', q{SELECT fs_online(fs_entity('sent', 7)) -> 's' ->> 'v'}), 900 + $step, "step $step: dba serves its commit at once");
	is($node->safe_psql('dbb', q{SELECT fs_online(fs_entity('sent', 7)) -> 's' ->> 'v'}), $before_b, "step $step: dbb's answer is unchanged");
}

# 4. The scheduled runs (pg_cron's next minute) materialized each database's own rows.
for my $db ('dba', 'dbb')
{
	ok($node->poll_query_until($db, q{SELECT count(*) > 0 FROM fs_runs WHERE view = 'b' AND kind = 'scheduled' AND outcome = 'success'}),
	   "$db: a scheduled materialization ran");
	my $tab = $node->safe_psql($db, q{SELECT format('feature_store.online_%s', view_id) FROM fs_views WHERE name = 'b'});
	my $oracle = q{SELECT DISTINCT ON (k) k, x FROM bh ORDER BY k, ev DESC, cr DESC NULLS LAST};
	is($node->safe_psql($db, qq{SELECT count(*) FROM (($oracle) EXCEPT SELECT k, x FROM $tab) a})
	   . '/' . $node->safe_psql($db, qq{SELECT count(*) FROM (SELECT k, x FROM $tab EXCEPT ($oracle)) b}),
	   '0/0', "$db: the scheduled run wrote exactly the oracle's rows");
	is($node->safe_psql($db, q{SELECT count(*) FROM generate_series(0, 49) k WHERE (fs_online(fs_entity('bk', k)) -> 'b' ->> 'x')::bigint <> k * 10 + } . $tag{$db}),
	   '0', "$db: the cache serves the scheduled run's rows");
}

# Unschedule (removed at commit), a rolled-back schedule (its job removed), a role without the grant.
$node->safe_psql('dbb', q{SELECT fs_unschedule_materialization('b')});
ok($node->poll_query_until('crondb', q{SELECT string_agg(jobname, ',') = 'feature_store@dba:b' FROM cron.job}),
   'dbb: unscheduling removed its job from crondb, not dba\'s');
$node->safe_psql('dbb', q{BEGIN; SELECT fs_schedule_materialization('b', '*/5 * * * *'); ROLLBACK;});
ok($node->poll_query_until('crondb', q{SELECT string_agg(jobname, ',') = 'feature_store@dba:b' FROM cron.job}),
   'dbb: a rolled-back schedule leaves no job');
is($node->safe_psql('dbb', q{SELECT count(*) FROM fs_schedules}), '0', 'dbb: and no schedule row');
$node->safe_psql('dbb', q{CREATE ROLE tap_bob LOGIN; GRANT SELECT ON bh TO tap_bob;});
$node->safe_psql('dbb', q{SET ROLE tap_bob; SELECT fs_register_view('bob_b', 'bh', 'bk', 'ev')});
my ($ret, $o, $err) = $node->psql('dbb', q{\set VERBOSITY verbose
SET ROLE tap_bob; SELECT fs_schedule_materialization('bob_b', '* * * * *')});
like($err, qr/ERROR:  42501: .*in pg_cron's database "crondb"/, 'a role that may not use pg_cron in crondb: 42501');
like($err, qr/HINT:  .*GRANT EXECUTE ON FUNCTION cron\.schedule_in_database/, 'with a hint naming the grant');
is($node->safe_psql('crondb', q{SELECT count(*) FROM cron.job WHERE username = 'tap_bob'}), '0', 'and no job');

# 5. A third database gains the extension later: a worker starts; DROP EXTENSION stops it.
$node->safe_psql('postgres', 'CREATE DATABASE dbc');
$node->safe_psql('dbc', q{
CREATE EXTENSION feature_store;
CREATE TABLE h (k bigint, ev timestamptz, x float8);
INSERT INTO h SELECT g, '2026-01-01', g * 3 FROM generate_series(1, 20) g;
SELECT fs_register_entity('e', 'k');
SELECT fs_register_view('v', 'h', 'e', 'ev');
SELECT fs_materialize('v', '-infinity', 'infinity');
});
ok($node->poll_query_until('dbc', q{SELECT (SELECT worker_state FROM fs_stat_online WHERE view IS NULL) = 'idle' AND (SELECT entries FROM fs_stat_online WHERE view = 'v') = 20}),
   'dbc: after CREATE EXTENSION a worker starts and loads its view');
is($node->safe_psql('postgres', $workers), 'dba,dbb,dbc', 'three workers');
$node->safe_psql('dbc', 'DROP EXTENSION feature_store CASCADE');
ok($node->poll_query_until('postgres', qq{SELECT ($workers) = 'dba,dbb'}), 'dbc: DROP EXTENSION stopped its worker');
# again, with the same view id and other values: served its new values, not the old entries
$node->safe_psql('dbc', q{
CREATE EXTENSION feature_store;
UPDATE h SET x = k * 5;
SELECT fs_register_entity('e', 'k');
SELECT fs_register_view('v', 'h', 'e', 'ev');
SELECT fs_materialize('v', '-infinity', 'infinity');
});
ok($node->poll_query_until('dbc', q{SELECT (SELECT entries FROM fs_stat_online WHERE view = 'v') = 20}), 'dbc: served again after CREATE EXTENSION');
is($node->safe_psql('dbc', q{SELECT count(*) FROM h WHERE (fs_online(fs_entity('e', k)) -> 'v' ->> 'x')::float8 <> x}), '0',
   'dbc: the new values, none of the dropped extension\'s entries');
# DROP DATABASE waits up to 5 s for other sessions: the worker leaves on its own.
($ret, $o, $err) = $node->psql('postgres', 'DROP DATABASE dbc');
is($ret, 0, 'DROP DATABASE without FORCE succeeds while the database is served') or diag($err);
ok($node->poll_query_until('postgres', qq{SELECT ($workers) = 'dba,dbb'}), 'and its worker is gone');
is($node->safe_psql('dba', q{SELECT fs_online(fs_entity('sent', 7)) -> 's' ->> 'v'}), '905', 'dba still served');

$node->stop;
done_testing();
