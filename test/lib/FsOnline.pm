# Shared setup for the online-store TAP tests: a preloaded cluster serving database "postgres",
# a history table with a known latest row per entity, and an independent oracle for answers.
package FsOnline;
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

# new_node(name, cache_size): a started cluster with the cache worker serving "postgres".
sub new_node
{
	my ($name, $cache_size, $extra) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'feature_store'
feature_store.database = 'postgres'
feature_store.cache_size = '$cache_size'
feature_store.worker_naptime = '200ms'
restart_after_crash = on
} . ($extra // ''));
	$node->start;
	return $node;
}

# load(node, n): n entities of view "stats" (4 features) with several history rows each,
# materialized; returns nothing. Entity i's latest row has trips = 10 * i + 2.
sub load
{
	my ($node, $n) = @_;
	$node->safe_psql('postgres', qq{
CREATE EXTENSION feature_store;
CREATE TABLE hist (id bigint, ts timestamptz, created timestamptz, f1 float8, f2 float8, trips bigint, label text);
INSERT INTO hist SELECT i, '2026-01-01'::timestamptz + r * interval '1 hour', now(),
                        i + r / 10.0, i * 0.5, 10 * i + r, 'label ' || i || '/' || r
FROM generate_series(1, $n) i, generate_series(0, 2) r;
SELECT fs_register_entity('ent', 'id');
SELECT fs_register_view('stats', 'hist', 'ent', event_time => 'ts', created_time => 'created');
SELECT fs_materialize('stats', '2025-01-01', '2027-01-01');
});
}

# Oracle: what fs_online must return for every entity 0..n+1, computed from the history table
# by brute force (latest row by event time, then created time).
sub oracle
{
	my ($node, $n) = @_;
	return $node->safe_psql('postgres', qq{
SELECT string_agg(coalesce(x.j::text, 'NULL'), E'\\n' ORDER BY i) FROM generate_series(0, $n + 1) i
LEFT JOIN LATERAL (SELECT jsonb_build_object('stats', jsonb_build_object('f1', f1, 'f2', f2, 'trips', trips, 'label', label)) j
                   FROM hist h WHERE h.id = i ORDER BY ts DESC, created DESC NULLS LAST LIMIT 1) x ON true});
}

# What fs_online answers for every entity 0..n+1.
sub answers
{
	my ($node, $n) = @_;
	return $node->safe_psql('postgres', qq{
SELECT string_agg(coalesce(fs_online(fs_entity('ent', i))::text, 'NULL'), E'\\n' ORDER BY i) FROM generate_series(0, $n + 1) i});
}

# Waits until the worker is idle and the view has n live entries in the cache.
sub wait_loaded
{
	my ($node, $n, $what) = @_;
	ok($node->poll_query_until('postgres',
		"SELECT (SELECT worker_state FROM fs_stat_online WHERE view IS NULL) = 'idle' AND "
		  . "(SELECT entries FROM fs_stat_online WHERE view = 'stats') >= $n"),
		"cache loaded by the worker: $what");
}

sub stat
{
	my ($node, $col) = @_;
	return $node->safe_psql('postgres', "SELECT $col FROM fs_stat_online WHERE view = 'stats'");
}

# The read-after-commit race check of the concurrency tests: 4 pgbench writers ($dir/writer.sql:
# commit or abort at random, logging attempts, commits and commit_done) against 8 readers
# ($dir/reader.sql: logging reads), then every read is checked against the committed log: found,
# never aborted, never torn, never older than a commit that had returned before the read started;
# the cache served some; $final_sql (a count of wrong final answers) must be 0.
sub race_phase
{
	my ($node, $dir, $label, $view, $final_sql, $final_what) = @_;
	my @conn = ('-h', $node->host, '-p', $node->port, 'postgres');
	$node->safe_psql('postgres', 'TRUNCATE attempts, reads, commit_done');
	my ($wout, $werr) = ('', '');
	my $writers = IPC::Run::start(['pgbench', '-n', '-c', '4', '-j', '1', '-T', '12', '-f', "$dir/writer.sql", @conn],
	'>', \$wout, '2>', \$werr);
	my ($rout, $rerr) = ('', '');
	IPC::Run::run(['pgbench', '-n', '-c', '8', '-j', '2', '-T', '10', '-f', "$dir/reader.sql", @conn],
	'>', \$rout, '2>', \$rerr);
	$writers->finish;
	like($rout, qr/number of failed transactions: 0/, "$label: readers ran without errors") or diag($rout, $rerr);
	like($wout, qr/number of failed transactions: 0/, "$label: writers ran without errors") or diag($wout, $werr);

	my ($nreads, $ncommits) = split /\|/, $node->safe_psql('postgres',
	q{SELECT (SELECT count(*) FROM reads), (SELECT count(*) FROM commit_done)});
	cmp_ok($nreads, '>', 1000, "$label: enough reads ($nreads)");
	cmp_ok($ncommits, '>', 50, "$label: enough commits ($ncommits)");
	my $aborted = $node->safe_psql('postgres', q{SELECT count(*) FROM attempts a WHERE NOT EXISTS (SELECT 1 FROM committed c WHERE c.id = a.id AND c.ver = a.ver)});
	cmp_ok($aborted, '>', 20, "$label: some writing transactions aborted ($aborted)");

	is($node->safe_psql('postgres', q{SELECT count(*) FROM reads WHERE v IS NULL OR w IS NULL}), '0', "$label: every read found the entity");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM reads r WHERE NOT EXISTS (SELECT 1 FROM committed c WHERE c.id = r.id AND c.ver = r.v)}),
	'0', "$label: no read returned a value of an aborted transaction");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM reads WHERE v <> w}), '0', "$label: no torn rows");
	my $stale = $node->safe_psql('postgres', q{
	SELECT count(*) FROM reads r
	WHERE EXISTS (SELECT 1 FROM commit_done d WHERE d.id = r.id AND d.ver > r.v AND d.at < r.started)});
	is($stale, '0', "$label: no read older than a commit that had returned before it started");
	my ($hits, $misses) = split /\|/, $node->safe_psql('postgres', qq{SELECT hits, misses FROM fs_stat_online WHERE view = '$view'});
	cmp_ok($hits, '>', 0, "$label: the cache served reads (hits $hits, misses $misses)");
	is($node->safe_psql('postgres', $final_sql), '0', "$label: $final_what");
}

# The per-key half of the protocol: after lookups of keys 5 and 1 (cached), $write_sql commits a
# new version (77) of key 1 of view $view (entity $entity, source table $source); then key 5 is
# still a hit and key 1 a miss that serves 77. Lookups in one session, one transaction each.
sub per_key_check
{
	my ($node, $view, $entity, $source, $write_sql, $label) = @_;
	my $counters = qq{SELECT hits || ' ' || misses FROM fs_stat_online WHERE view = '$view'};
	$node->safe_psql('postgres', qq{SELECT fs_online(fs_entity('$entity', 5)); SELECT fs_online(fs_entity('$entity', 1));});
	my ($h0, $m0) = split / /, $node->safe_psql('postgres', $counters);
	$node->safe_psql('postgres', $write_sql);
	my $v5 = $node->safe_psql('postgres', qq{SELECT fs_online(fs_entity('$entity', 5)) -> '$view' ->> 'v'});
	my ($h5, $m5) = split / /, $node->safe_psql('postgres', $counters);
	my $v1 = $node->safe_psql('postgres', qq{SELECT fs_online(fs_entity('$entity', 1)) -> '$view' ->> 'v'});
	my ($h1, $m1) = split / /, $node->safe_psql('postgres', $counters);
	is($v1, '77', "$label: the new value of key 1 is served right after its commit");
	is($v5, $node->safe_psql('postgres', qq{SELECT v FROM $source WHERE id = 5 ORDER BY ts DESC LIMIT 1}), "$label: key 5 unchanged");
	is($h5 - $h0, 1, "$label: key 5 stayed cached: a hit after the commit of key 1");
	is($m5 - $m0, 0, "$label: key 5: no miss");
	is($m1 - $m5, 1, "$label: key 1 was invalidated: a miss");
}

1;
