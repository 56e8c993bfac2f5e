# Concurrency proof of the cache protocol: 8 pgbench readers call fs_online while 4 writers
# rewrite the same 3 hot entities in transactions that commit or abort at random (with sleeps inside
# to widen the races); each writer inserts into the source and runs fs_materialize in its
# transaction, which writes through the C upsert and its per-key cache marks. Each value is a version number (the event time in microseconds), written
# to two features at once. Afterwards a checker proves that no read returned
#   - a version whose transaction aborted (every read version is in the committed log),
#   - a torn row (both features carry the same version),
#   - a version older than one whose COMMIT had already returned when the read started.
# Twice: with the worker reloading after each commit, and with lazy refills by readers only.
# Then per key: a run that writes key 1 leaves key 5 cached (FsOnline::per_key_check).
# Sensitivity, tried once each: without the commit-time bump, or with the fill tagged with the
# generation read after (instead of before) the snapshot, or without the C upsert's per-key
# marks, the staleness check fails.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FsOnline;

my $node = FsOnline::new_node('conc', '1MB', "max_connections = 40\n");
$node->safe_psql('postgres', q{
CREATE EXTENSION feature_store;
CREATE TABLE chist (id bigint, ts timestamptz, v bigint, w bigint);
INSERT INTO chist SELECT i, 'epoch'::timestamptz, 0, 0 FROM generate_series(1, 10) i;
SELECT fs_register_entity('cent', 'id');
SELECT fs_register_view('c', 'chist', 'cent', event_time => 'ts');
SELECT fs_materialize('c', '-infinity', 'infinity');
CREATE TABLE committed (id bigint, ver bigint);           -- written inside the writing transaction
INSERT INTO committed SELECT i, 0 FROM generate_series(1, 10) i;
CREATE UNLOGGED TABLE commit_done (id bigint, ver bigint, at timestamptz);  -- after COMMIT returned
CREATE UNLOGGED TABLE attempts (id bigint, ver bigint);   -- every writing transaction, before BEGIN
CREATE UNLOGGED TABLE reads (id bigint, v bigint, w bigint, started timestamptz);
});

my $dir = PostgreSQL::Test::Utils::tempdir;
open my $r, '>', "$dir/reader.sql" or die;
print $r q{\set k random(1, 3)
INSERT INTO reads SELECT :k, (f -> 'c' ->> 'v')::bigint, (f -> 'c' ->> 'w')::bigint, s
FROM (SELECT clock_timestamp() AS s, fs_online(fs_entity('cent', :k)) AS f OFFSET 0) x;
};
close $r;
open my $w, '>', "$dir/writer.sql" or die;
print $w q{\set k random(1, 3)
\set commit random(0, 2)
\set pause random(0, 3)
SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint AS ver \gset
INSERT INTO attempts VALUES (:k, :ver);
BEGIN;
INSERT INTO chist VALUES (:k, 'epoch'::timestamptz + :ver * interval '1 microsecond', :ver, :ver);
INSERT INTO committed VALUES (:k, :ver);
SELECT fs_materialize('c', now() - interval '1 hour', 'infinity');
\sleep :pause ms
\if :commit
COMMIT;
INSERT INTO commit_done VALUES (:k, :ver, clock_timestamp());
\else
ROLLBACK;
\endif
};
close $w;

my $final = q{
	SELECT count(*) FROM generate_series(1, 10) i
	WHERE (fs_online(fs_entity('cent', i)) -> 'c' ->> 'v')::bigint IS DISTINCT FROM (SELECT max(ver) FROM commit_done d WHERE d.id = i)
	  AND EXISTS (SELECT 1 FROM commit_done d WHERE d.id = i)};
sub phase { FsOnline::race_phase($node, $dir, $_[0], 'c', $final, 'final answers are the last committed versions') }

# Phase 1: the worker reloads the view after every commit (default).
phase('eager reload');
# Phase 2: lazy refills only (the worker loads once): every refill goes through the reader's fill
# check, so a broken fill protocol cannot be healed by a worker reload.
$node->append_conf('postgresql.conf', "feature_store.reload_after_commit = off\n");
$node->reload;
phase('lazy refill');

# Per key: the writers' runs go through the C upsert (materialize_upsert.c), which marks only
# the keys it writes; a run that writes key 1 leaves key 5's cached copy a hit.
FsOnline::per_key_check($node, 'c', 'cent', 'chist', q{INSERT INTO chist VALUES (1, now(), 77, 77);
	SELECT fs_materialize('c', now() - interval '1 minute', now() + interval '1 minute')}, 'materialization run');
$node->stop;
done_testing();
