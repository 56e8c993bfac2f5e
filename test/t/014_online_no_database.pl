# feature_store.database names a database that does not exist yet: the cache worker retries
# once (the database is often created right after start), then says so once (one LOG with a
# hint) and waits quietly instead of failing every bgw_restart_time (two FATALs in all), and
# serves the database as soon as it is created.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nodb');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'feature_store'
feature_store.database = 'later'
feature_store.worker_naptime = '100ms'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION feature_store');
# "postgres" is not the cached database: each session's first statistics read there raises a
# NOTICE (015 tests it), and poll_query_until accepts only an empty stderr.
$node->safe_psql('postgres', 'ALTER DATABASE postgres SET client_min_messages = warning');
my $state = q{SELECT worker_state FROM fs_stat_online WHERE view IS NULL};

ok($node->poll_query_until('postgres', "SELECT ($state) = 'waiting for database'"),
   'the worker reports that it waits for its database');
# Without the wait, the worker would fail to connect every 2 s (bgw_restart_time).
sleep 7;
my $log = slurp_file($node->logfile);
my $fatals = () = $log =~ /FATAL:/g;
my $exits = () = $log =~ /background worker "feature_store cache worker" \(PID \d+\) exited/g;
cmp_ok($fatals, '<=', 2, "at most two FATALs in 7 s (got $fatals)");
cmp_ok($exits, '<=', 2, "the worker exited at most twice in 7 s (got $exits)");
my $waits = () = $log =~ /cache worker is waiting for database "later" to exist/g;
is($waits, 1, 'one LOG line says what the worker waits for');
like($log, qr/HINT:\s+Create the database, or set feature_store.database/, 'with a hint');
is($node->safe_psql('postgres', $state), 'waiting for database', 'still waiting, quietly');

# Once the database exists, the worker connects to it and serves its views from the cache.
$node->safe_psql('postgres', 'CREATE DATABASE later');
$node->safe_psql('later', q{
CREATE EXTENSION feature_store;
CREATE TABLE h (k int, ev timestamptz, x float8);
INSERT INTO h SELECT g, '2026-01-01', g * 1.5 FROM generate_series(1, 50) g;
SELECT fs_register_entity('ent', 'k');
SELECT fs_register_view('stats', 'h', 'ent', 'ev');
SELECT fs_materialize('stats', '-infinity', 'infinity');
});
ok($node->poll_query_until('later', qq{SELECT ($state) = 'idle' AND (SELECT entries FROM fs_stat_online WHERE view = 'stats') = 50}),
   'after CREATE DATABASE the worker connects and loads the views');
is($node->safe_psql('later', q{SELECT count(*) FROM h WHERE (fs_online(fs_entity('ent', k))->'stats'->>'x')::float8 = x}),
   '50', 'every entity is served with its value');
cmp_ok($node->safe_psql('later', q{SELECT hits FROM fs_stat_online WHERE view = 'stats'}), '>=', 50,
   'the lookups were cache hits');

$node->stop;
done_testing();
