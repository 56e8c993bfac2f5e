# Statistics belong to the database they are read in. Two databases hold a view with the same
# internal view_id; the cache serves only feature_store.database ("db1"). Known answers: the
# counters of db1 grow by exactly the lookups made in db1; db2 sees no cache rows and zero
# figures, with one NOTICE per session naming the setting; db2's writes (a whole-view change,
# switching the view off and on, streamed rows for the same keys) leave db1's cache, counters and
# hits alone; and a re-created db1 is served its own rows, not the old incarnation's cached ones.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('statsdb');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'feature_store'
feature_store.database = 'db1'
feature_store.worker_naptime = '100ms'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE db1');
$node->safe_psql('postgres', 'CREATE DATABASE db2');

# The same view in both databases; the values differ (x = k * factor), so that a row served
# from the other database's cache would show.
sub setup
{
	my ($db, $factor) = @_;
	$node->safe_psql($db, qq{
CREATE EXTENSION feature_store;
CREATE TABLE h (k bigint, ev timestamptz, x float8);
INSERT INTO h SELECT g, '2026-01-01', g * $factor FROM generate_series(1, 20) g;
SELECT fs_register_entity('driver', 'k');
SELECT fs_register_view('v', 'h', 'driver', 'ev');
SELECT fs_materialize('v', '-infinity', 'infinity');
});
}
setup('db1', 1);
setup('db2', 100);
my $vid_sql = q{SELECT view_id FROM feature_store.feature_view WHERE name = 'v'};
is($node->safe_psql('db1', $vid_sql), $node->safe_psql('db2', $vid_sql), 'both views have the same internal view_id');

my $stat = q{SELECT coalesce(string_agg(format('%s:%s:%s:%s:%s', coalesce(view, '*'), entries, hits, misses, read_throughs), ' ' ORDER BY view NULLS LAST), '') FROM fs_stat_online};
ok($node->poll_query_until('db1',
	q{SELECT (SELECT worker_state FROM fs_stat_online WHERE view IS NULL) = 'idle' AND (SELECT entries FROM fs_stat_online WHERE view = 'v') = 20}),
	'db1: the worker loaded the view');

# db1: 7 lookups of loaded keys (hits) and 3 of distinct absent keys (misses read through).
sub counters
{
	my $r = $node->safe_psql('db1', q{SELECT hits || ' ' || misses || ' ' || read_throughs FROM fs_stat_online WHERE view = 'v'});
	return split / /, $r;
}
my @c0 = counters();
is($node->safe_psql('db1', q{SELECT string_agg(fs_online(fs_entity('driver', k))::text, ',' ORDER BY k)
	FROM (VALUES (1), (2), (3), (4), (5), (6), (7), (901), (902), (903)) t(k)}),
	join(',', map { qq({"v": {"x": $_}}) } 1 .. 7), 'db1: its own values');
my @c1 = counters();
is(join(' ', map { $c1[$_] - $c0[$_] } 0 .. 2), '7 3 3', 'db1: exactly 7 hits, 3 misses, 3 read-throughs counted');
is($node->safe_psql('db1', q{SELECT entries FROM fs_stat_online WHERE view = 'v'}), '23',
	'db1: 23 entries: 20 rows and the 3 absent keys filled as not found');

# db2: served from its tables; its statistics show none of db1's counters.
my ($ret, $out, $err) = $node->psql('db2', qq{
SELECT string_agg(fs_online(fs_entity('driver', k))::text, ',' ORDER BY k) FROM generate_series(1, 3) k;
SELECT count(*) FROM fs_online_batch(ARRAY['driver:4', 'driver:5']::fs_entity[]);
$stat;
SELECT worker_state || ':' || capacity_bytes FROM fs_stat_online WHERE view IS NULL;
SELECT view || ':' || hits || ':' || misses || ':' || coalesce(cache_hit_rate::text, 'NULL') FROM fs_stat_views;
$stat;});
is($ret, 0, 'db2: the session ran');
is($out, join("\n", '{"v": {"x": 100}},{"v": {"x": 200}},{"v": {"x": 300}}', '2', '*:0:0:0:0',
	'idle:0', 'v:0:0:NULL', '*:0:0:0:0'),
	"db2: its own values; no cache row for its view, zero figures (the worker's state is shown)");
my $notices = () = $err =~ /NOTICE:  feature_store online cache serves database "db1", not this one/g;
is($notices, 1, 'db2: one NOTICE in the session (serving and two statistics reads)');
like($err, qr/HINT:  To cache this database's online views, set feature_store\.database = 'db2'/, 'the NOTICE names the setting');
($ret, $out, $err) = $node->psql('db2', 'SELECT hits FROM fs_stat_views; SELECT hits FROM fs_stat_views');
is($out, "0\n0", 'db2: fs_stat_views in a new session: zero hits');
$notices = () = $err =~ /NOTICE:  feature_store online cache serves database/g;
is($notices, 1, 'db2: one NOTICE in the new session too');
($ret, $out, $err) = $node->psql('db1', "SELECT count(*) FROM fs_stat_online; SELECT count(*) FROM fs_stat_views");
is($err, '', 'db1: no NOTICE in the cached database');
my @c2 = counters();
is(join(' ', map { $c2[$_] - $c1[$_] } 0 .. 2), '0 0 0', "db1: db2's lookups counted nothing in db1");

# db2's writers: a whole-view change, the view switched off and on, then streamed rows for keys
# 1..5 (the same cache keys as db1's). None of it may touch db1's slot, entries or key generations.
$node->safe_psql('db2', q{
SELECT fs_online_reload('v');
SELECT fs_set_online_mode('v', 'off');
SELECT fs_set_online_mode('v', 'batch');
SELECT fs_materialize('v', '-infinity', 'infinity');
SELECT fs_set_online_mode('v', 'stream');
});
$node->safe_psql('db2', q{INSERT INTO h SELECT g, '2026-02-01', g * 1000 FROM generate_series(1, 5) g});
is($node->safe_psql('db2', q{SELECT string_agg(fs_online(fs_entity('driver', k))::text, ',' ORDER BY k) FROM generate_series(1, 2) k}),
	'{"v": {"x": 1000}},{"v": {"x": 2000}}', 'db2: streamed rows served');
# give a (wrongly) woken worker time to act before looking
sleep 1;
is($node->safe_psql('db1', q{SELECT entries FROM fs_stat_online WHERE view = 'v'}), '23',
	"db1: its 23 cached entries (20 rows, 3 absent keys) are still there");
my @c3 = counters();
is(join(' ', map { $c3[$_] - $c0[$_] } 0 .. 2), '7 3 3', "db1: its counters are unchanged by db2's writes");
is($node->safe_psql('db1', q{SELECT string_agg(fs_online(fs_entity('driver', k))::text, ',' ORDER BY k) FROM generate_series(1, 5) k}),
	join(',', map { qq({"v": {"x": $_}}) } 1 .. 5), 'db1: its own values for keys 1..5');
my @c4 = counters();
is(join(' ', map { $c4[$_] - $c3[$_] } 0 .. 2), '5 0 0', "db1: keys 1..5 are still hits after db2 streamed the same keys");

# A re-created db1 (a new database under the configured name) must not be served the cached
# rows of the old one, although its view has the same view_id.
$node->safe_psql('postgres', 'DROP DATABASE db1 WITH (FORCE)');
$node->safe_psql('postgres', 'CREATE DATABASE db1');
setup('db1', 7);
ok($node->poll_query_until('db1',
	q{SELECT (SELECT worker_state FROM fs_stat_online WHERE view IS NULL) = 'idle' AND (SELECT entries FROM fs_stat_online WHERE view = 'v') = 20}),
	'new db1: the worker loaded its view');
is($node->safe_psql('db1', q{SELECT string_agg(fs_online(fs_entity('driver', k))::text, ',' ORDER BY k) FROM generate_series(1, 3) k}),
	'{"v": {"x": 7}},{"v": {"x": 14}},{"v": {"x": 21}}', 'new db1: its own values, not the old cached ones');
is($node->safe_psql('db1', q{SELECT hits || ' ' || misses FROM fs_stat_online WHERE view = 'v'}), '3 0',
	'new db1: counters start from zero and count its 3 hits');

$node->stop;
done_testing();
