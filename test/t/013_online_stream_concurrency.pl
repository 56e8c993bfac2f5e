# The cache protocol with per-key invalidation (stream mode): 8 pgbench readers call fs_online
# while 4 writers insert new versions of the same 3 hot entities into the view's SOURCE, which
# streams them into the online table inside the writing transaction; writers commit or abort at
# random (sleeps inside widen the races). A streaming commit only makes its keys stale (new key
# generations), so this checks that per-key invalidation keeps every guarantee of 012:
#   - no read returns a version whose transaction aborted,
#   - no torn row (both features carry the same version),
#   - no read is older than a commit whose COMMIT had returned before the read started;
# and that it is per key: a commit of one key leaves another key's cached copy a hit.
# Sensitivity, tried once: without the commit-time key bump, the staleness check fails.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FsOnline;

my $node = FsOnline::new_node('sconc', '1MB', "max_connections = 40\n");
$node->safe_psql('postgres', q{
CREATE EXTENSION feature_store;
CREATE TABLE shist (id bigint, ts timestamptz, v bigint, w bigint);
INSERT INTO shist SELECT i, 'epoch'::timestamptz, 0, 0 FROM generate_series(1, 10) i;
SELECT fs_register_entity('sent', 'id');
SELECT fs_register_view('s', 'shist', 'sent', event_time => 'ts');
SELECT fs_set_online_mode('s', 'stream');
CREATE TABLE committed (id bigint, ver bigint);           -- written inside the writing transaction
INSERT INTO committed SELECT i, 0 FROM generate_series(1, 10) i;
CREATE UNLOGGED TABLE commit_done (id bigint, ver bigint, at timestamptz);  -- after COMMIT returned
CREATE UNLOGGED TABLE attempts (id bigint, ver bigint);   -- every writing transaction, before BEGIN
CREATE UNLOGGED TABLE reads (id bigint, v bigint, w bigint, started timestamptz);
});
is($node->safe_psql('postgres', q{SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger
  WHERE tgenabled = 'O' AND tgrelid = (SELECT format('feature_store.online_%s', view_id)::regclass FROM fs_views WHERE name = 's')}),
  'fs_online_changed,fs_online_keys_del,fs_online_keys_ins,fs_online_keys_upd', 'stream mode: per-key triggers on the online table');

my $dir = PostgreSQL::Test::Utils::tempdir;
open my $r, '>', "$dir/reader.sql" or die;
print $r q{\set k random(1, 3)
INSERT INTO reads SELECT :k, (f -> 's' ->> 'v')::bigint, (f -> 's' ->> 'w')::bigint, s
FROM (SELECT clock_timestamp() AS s, fs_online(fs_entity('sent', :k)) AS f OFFSET 0) x;
};
close $r;
open my $w, '>', "$dir/writer.sql" or die;
print $w q{\set k random(1, 3)
\set commit random(0, 2)
\set pause random(0, 3)
SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint AS ver \gset
INSERT INTO attempts VALUES (:k, :ver);
BEGIN;
INSERT INTO shist VALUES (:k, 'epoch'::timestamptz + :ver * interval '1 microsecond', :ver, :ver);
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
	WHERE (fs_online(fs_entity('sent', i)) -> 's' ->> 'v')::bigint IS DISTINCT FROM
	      (SELECT h.v FROM shist h WHERE h.id = i ORDER BY h.ts DESC LIMIT 1)};
sub phase { FsOnline::race_phase($node, $dir, $_[0], 's', $final, 'final answers are the latest committed versions') }

phase('stream, worker reloads');
$node->append_conf('postgresql.conf', "feature_store.reload_after_commit = off\n");
$node->reload;
phase('stream, lazy refill');

# Per key: a streaming commit of key 1 makes key 1 a miss (new value served) and leaves key 5's
# cached copy a hit.
FsOnline::per_key_check($node, 's', 'sent', 'shist', q{INSERT INTO shist VALUES (1, now(), 77, 77)}, 'streaming commit');

# The other per-key triggers: a manual UPDATE and DELETE of online rows (superuser) are served at
# once, the UPDATE's old and new key both invalidated (the oracle is the online table itself).
my $tab = $node->safe_psql('postgres', q{SELECT format('feature_store.online_%s', view_id) FROM fs_views WHERE name = 's'});
$node->safe_psql('postgres', q{SELECT fs_online(fs_entity('sent', i)) FROM generate_series(1, 10) i});
$node->safe_psql('postgres', "UPDATE $tab SET v = 999, w = 999 WHERE id = 3");
is($node->safe_psql('postgres', q{SELECT fs_online(fs_entity('sent', 3)) -> 's' ->> 'v'}), '999', 'a manual UPDATE is served at once');
$node->safe_psql('postgres', "UPDATE $tab SET id = 11 WHERE id = 4");
is($node->safe_psql('postgres', q{SELECT fs_online(fs_entity('sent', 4)) IS NULL AND fs_online(fs_entity('sent', 11)) IS NOT NULL}),
   't', 'an UPDATE of the key: the old key is gone, the new one served');
$node->safe_psql('postgres', "DELETE FROM $tab WHERE id = 2");
is($node->safe_psql('postgres', q{SELECT fs_online(fs_entity('sent', 2)) IS NULL}), 't', 'a manual DELETE is served at once');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM generate_series(1, 12) i
  WHERE fs_online(fs_entity('sent', i)) IS DISTINCT FROM
        (SELECT jsonb_build_object('s', jsonb_build_object('v', o.v, 'w', o.w)) FROM $tab o WHERE o.id = i)}),
   '0', 'every answer equals the online table');
$node->stop;
done_testing();
