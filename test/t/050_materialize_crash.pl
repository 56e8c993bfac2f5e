# Crash safety of materialization: the server is killed (immediate shutdown, no checkpoint)
# while a large incremental materialization is writing the online table (its file is already
# growing); after restart (WAL replay) the online store shows none of that run and the
# watermark did not move. A run that committed just before the kill is there in full, with its
# watermark. Either way the online table equals the brute-force oracle of what committed, and
# fs_online serves it (the cache is rebuilt from the durable table).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'feature_store'
feature_store.database = 'postgres'
max_wal_size = '1GB'
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION feature_store;
CREATE TABLE big (uid int, ev timestamptz, cr timestamptz DEFAULT clock_timestamp(), x float8);
INSERT INTO big (uid, ev, cr, x)
SELECT g % 400000, '2026-01-01'::timestamptz + g * interval '1 second', now() - interval '1 hour', g
FROM generate_series(1, 800000) g;
SELECT fs_register_entity('u', 'uid');
SELECT fs_register_view('big', 'big', 'u', 'ev', 'cr');
SELECT fs_set_online_mode('big', 'batch');
});
my $tab = $node->safe_psql('postgres', q{SELECT format('feature_store.online_%s', view_id) FROM fs_views WHERE name = 'big'});
my $state = qq{SELECT (SELECT count(*) FROM $tab) || '/' || coalesce((SELECT (watermark IS NOT NULL)::text FROM fs_stat_views WHERE view = 'big'), 'none')
                  || '/' || (SELECT count(*) FROM fs_runs WHERE view = 'big' AND outcome = 'success')};
my $oracle = q{SELECT DISTINCT ON (uid) uid, ev, x FROM big ORDER BY uid, ev DESC, cr DESC NULLS LAST};
my $diff = qq{SELECT (SELECT count(*) FROM (($oracle) EXCEPT SELECT uid, __event_ts, x FROM $tab) a)
                   + (SELECT count(*) FROM (SELECT uid, __event_ts, x FROM $tab EXCEPT ($oracle)) b)};

# 1. Kill in the middle of the run.
my ($out, $err) = ('', '');
my $h = IPC::Run::start(['psql', '-X', '-d', $node->connstr('postgres'), '-c',
						 q{SELECT fs_materialize_incremental('big')}], '>', \$out, '2>', \$err);
ok($node->poll_query_until('postgres', qq{SELECT pg_relation_size('$tab') > 0}),
   'the run is writing the online table');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT fs_materialize_incremental%' AND state = 'active'}),
   '1', 'and has not committed');
$node->stop('immediate');
$h->finish;
$node->start;
is($node->safe_psql('postgres', $state), '0/false/0', 'after the crash: none of the run, watermark not moved');

# 2. The same run to completion, then a crash right after its commit.
my $n = $node->safe_psql('postgres', q{SELECT fs_materialize_incremental('big')});
is($n, '400000', 'a complete run writes every entity');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', $state), '400000/true/1', 'after the crash: the whole run and its watermark');
is($node->safe_psql('postgres', $diff), '0', 'the online table equals the oracle');
ok($node->poll_query_until('postgres', "SELECT worker_state = 'idle' FROM fs_stat_online WHERE view IS NULL"),
   'cache worker idle after restart');
is($node->safe_psql('postgres', q{SET max_parallel_workers_per_gather = 0; SELECT count(*) FROM (SELECT uid, x FROM (SELECT DISTINCT ON (uid) uid, x FROM big ORDER BY uid, ev DESC) o
                                  WHERE uid % 4999 = 0 AND fs_online(fs_entity('u', uid), 'big') IS DISTINCT FROM jsonb_build_object('big', jsonb_build_object('x', x))) m}),
   '0', 'fs_online serves the recovered rows');

# 3. An incremental run after new rows, killed mid-way: the earlier state survives intact.
$node->safe_psql('postgres', q{INSERT INTO big (uid, ev, x) SELECT g, '2027-01-01'::timestamptz + g * interval '1 second', -g FROM generate_series(0, 399999) g});
my $wm = $node->safe_psql('postgres', q{SELECT watermark FROM fs_stat_views WHERE view = 'big'});
$h = IPC::Run::start(['psql', '-X', '-d', $node->connstr('postgres'), '-c',
					  q{SELECT fs_materialize_incremental('big')}], '>', \$out, '2>', \$err);
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'SELECT fs_materialize_incremental%' AND state = 'active' AND now() - query_start > interval '300 ms'}),
   'second run in progress');
$node->stop('immediate');
$h->finish;
$node->start;
is($node->safe_psql('postgres', qq{SELECT watermark = '$wm' AND (SELECT count(*) FROM $tab WHERE x < 0) = 0 FROM fs_stat_views WHERE view = 'big'}),
   't', 'after the crash: the interrupted run left no row and the watermark as it was');
$node->safe_psql('postgres', q{SELECT fs_materialize_incremental('big')});
is($node->safe_psql('postgres', $diff), '0', 'a new run completes it: the online table equals the oracle');
$node->stop;
done_testing();
