# Shared setup for the online-store TAP tests: a preloaded cluster serving database "postgres",
# a history table with a known latest row per entity, and an independent oracle for answers.
package FsOnline;
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

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

1;
