# The cache protocol when materialization runs write a batch-mode view: the C upsert of an
# incremental run (materialize_upsert.c) bypasses the online table's trigger and asks for per-key
# invalidation of the keys it writes. 8 pgbench readers call fs_online while 4 writers insert new
# versions of 3 hot entities into the SOURCE and run fs_materialize over exactly that row's
# window in the same transaction, committing or aborting at random (sleeps inside widen the
# races). The checks of 012/013 (FsOnline::race_phase): no aborted value, no torn row, no read
# older than a commit that had returned before it started; and it is per key: a run that writes
# key 1 leaves key 5's cached copy a hit, while key 1 is a miss that serves the new value.
# Sensitivity, tried once: without the marks (mark_key in materialize_upsert.c) the staleness
# check and the final answers fail.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FsOnline;

my $node = FsOnline::new_node('iconc', '1MB', "max_connections = 40\n");
$node->safe_psql('postgres', q{
CREATE EXTENSION feature_store;
CREATE TABLE bhist (id bigint, ts timestamptz, v bigint, w bigint);
INSERT INTO bhist SELECT i, 'epoch'::timestamptz, 0, 0 FROM generate_series(1, 10) i;
SELECT fs_register_entity('bent', 'id');
SELECT fs_register_view('b', 'bhist', 'bent', event_time => 'ts');
SELECT fs_materialize('b', '-infinity', 'infinity');
CREATE TABLE committed (id bigint, ver bigint);           -- written inside the writing transaction
INSERT INTO committed SELECT i, 0 FROM generate_series(1, 10) i;
CREATE UNLOGGED TABLE commit_done (id bigint, ver bigint, at timestamptz);  -- after COMMIT returned
CREATE UNLOGGED TABLE attempts (id bigint, ver bigint);   -- every writing transaction, before BEGIN
CREATE UNLOGGED TABLE reads (id bigint, v bigint, w bigint, started timestamptz);
});
is($node->safe_psql('postgres', q{SELECT online_mode FROM fs_views WHERE name = 'b'}), 'batch', 'the view is in batch mode');

my $dir = PostgreSQL::Test::Utils::tempdir;
open my $r, '>', "$dir/reader.sql" or die;
print $r q{\set k random(1, 3)
INSERT INTO reads SELECT :k, (f -> 'b' ->> 'v')::bigint, (f -> 'b' ->> 'w')::bigint, s
FROM (SELECT clock_timestamp() AS s, fs_online(fs_entity('bent', :k)) AS f OFFSET 0) x;
};
close $r;
open my $w, '>', "$dir/writer.sql" or die;
print $w q{\set k random(1, 3)
\set commit random(0, 2)
\set pause random(0, 3)
SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint AS ver \gset
INSERT INTO attempts VALUES (:k, :ver);
BEGIN;
INSERT INTO bhist VALUES (:k, 'epoch'::timestamptz + :ver * interval '1 microsecond', :ver, :ver);
SELECT fs_materialize('b', 'epoch'::timestamptz + :ver * interval '1 microsecond', 'epoch'::timestamptz + :ver * interval '1 microsecond');
INSERT INTO committed VALUES (:k, :ver);
\sleep :pause ms
\if :commit
COMMIT;
INSERT INTO commit_done VALUES (:k, :ver, clock_timestamp());
\else
ROLLBACK;
\endif
};
close $w;

# final state: the cache agrees with the history (oracle: latest committed version per key)
my $final = q{
	SELECT count(*) FROM generate_series(1, 10) i
	WHERE (fs_online(fs_entity('bent', i)) -> 'b' ->> 'v')::bigint IS DISTINCT FROM
	      (SELECT h.v FROM bhist h WHERE h.id = i ORDER BY h.ts DESC LIMIT 1)};
sub phase { FsOnline::race_phase($node, $dir, $_[0], 'b', $final, 'final answers are the latest committed versions') }

phase('incremental runs, worker reloads');
$node->append_conf('postgresql.conf', "feature_store.reload_after_commit = off\n");
$node->reload;
phase('incremental runs, lazy refill');

# Per key: a run that writes key 1 makes key 1 a miss (new value served) and leaves key 5's
# cached copy a hit. Lookups of one session in one transaction each; counters from fs_stat_online.
$node->safe_psql('postgres', q{SELECT fs_online(fs_entity('bent', 5)); SELECT fs_online(fs_entity('bent', 1));});
my $before = $node->safe_psql('postgres', q{SELECT hits || ' ' || misses FROM fs_stat_online WHERE view = 'b'});
$node->safe_psql('postgres', q{INSERT INTO bhist VALUES (1, now(), 77, 77);
	SELECT fs_materialize('b', now() - interval '1 minute', now() + interval '1 minute')});
my $v5 = $node->safe_psql('postgres', q{SELECT fs_online(fs_entity('bent', 5)) -> 'b' ->> 'v'});
my $after5 = $node->safe_psql('postgres', q{SELECT hits || ' ' || misses FROM fs_stat_online WHERE view = 'b'});
my $v1 = $node->safe_psql('postgres', q{SELECT fs_online(fs_entity('bent', 1)) -> 'b' ->> 'v'});
my $after1 = $node->safe_psql('postgres', q{SELECT hits || ' ' || misses FROM fs_stat_online WHERE view = 'b'});
my ($h0, $m0) = split / /, $before;
my ($h5, $m5) = split / /, $after5;
my ($h1, $m1) = split / /, $after1;
is($v1, '77', 'the materialized value of key 1 is served right after its commit');
is($v5, $node->safe_psql('postgres', q{SELECT v FROM bhist WHERE id = 5 ORDER BY ts DESC LIMIT 1}), 'key 5 unchanged');
is($h5 - $h0, 1, 'key 5 stayed cached: a hit after the run that wrote key 1');
is($m5 - $m0, 0, 'key 5: no miss');
is($m1 - $m5, 1, 'key 1 was invalidated: a miss');
$node->stop;
done_testing();
