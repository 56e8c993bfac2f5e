# Logical replication into feature_store tables, between two clusters. A subscription's apply
# worker fires no statement trigger, and row triggers only when enabled on replica (it runs with
# session_replication_role = replica), so:
#  1. a subscriber whose ONLINE TABLES are subscription targets (the publisher materializes,
#     the subscriber serves) must not serve stale cached values: its replica-only triggers on
#     the online tables invalidate the changed keys (row trigger) or the whole view (TRUNCATE)
#     at the apply worker's commit. Checked for a batch-mode and a stream-mode view of the
#     subscriber, against the subscriber's own online table (the oracle), with the cache hit
#     counters proving the cache was in use before and after;
#  2. a subscriber whose view SOURCE is a subscription target, in stream mode, streams the rows
#     the subscription applies (replica-only row trigger on the source): served at once,
#     compared with the latest row per entity of the subscriber's source.
# Sensitivity, tried once: on the code before these triggers existed, the first check of 1
# (updated keys) and of 2 fail (stale and missing values).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

sub node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => 'logical');
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'feature_store'
feature_store.database = 'postgres'
feature_store.worker_naptime = '200ms'
max_prepared_transactions = 5
});
	$node->start;
	return $node;
}

my $pub = node('publisher');
my $sub = node('subscriber');

# The same registry on both sides, in the same order: the online tables get the same names.
my $registry = q{
CREATE EXTENSION feature_store;
CREATE TABLE bhist (id bigint, ts timestamptz, v bigint);
CREATE TABLE khist (id bigint, ts timestamptz, v bigint);
CREATE TABLE rhist (id bigint, ts timestamptz, v bigint, PRIMARY KEY (id, ts));
SELECT fs_register_entity('ent', 'id');
SELECT fs_register_view('bv', 'bhist', 'ent', event_time => 'ts');
SELECT fs_register_view('kv', 'khist', 'ent', event_time => 'ts');
SELECT fs_register_view('rv', 'rhist', 'ent', event_time => 'ts');
};
$pub->safe_psql('postgres', $registry);
$sub->safe_psql('postgres', $registry);
my $ids = q{SELECT string_agg(name || '=' || view_id, ',' ORDER BY name) FROM fs_views};
is($sub->safe_psql('postgres', $ids), $pub->safe_psql('postgres', $ids), 'same view ids on both sides');
my %id = map { split /=/ } split /,/, $pub->safe_psql('postgres', $ids);

# Publisher: bv and kv are batch views, materialized there; rhist is only replicated.
$pub->safe_psql('postgres', qq{
SELECT fs_set_online_mode('bv', 'batch');
SELECT fs_set_online_mode('kv', 'batch');
INSERT INTO bhist SELECT i, '2026-01-01', 1 FROM generate_series(1, 20) i;
INSERT INTO khist SELECT i, '2026-01-01', 1 FROM generate_series(1, 20) i;
INSERT INTO rhist SELECT i, '2026-01-01', 1 FROM generate_series(1, 20) i;
SELECT fs_materialize('bv', '2025-01-01', '2027-01-01');
SELECT fs_materialize('kv', '2025-01-01', '2027-01-01');
CREATE PUBLICATION online_pub FOR TABLE feature_store.online_$id{bv}, feature_store.online_$id{kv};
CREATE PUBLICATION source_pub FOR TABLE rhist;
});
# Subscriber: bv in batch mode, kv in stream mode (the two trigger sets of online tables), rv
# streaming from its subscribed source.
$sub->safe_psql('postgres', q{
SELECT fs_set_online_mode('bv', 'batch');
SELECT fs_set_online_mode('kv', 'stream');
SELECT fs_set_online_mode('rv', 'stream');
});
is($sub->safe_psql('postgres', qq{SELECT string_agg(tgrelid::regclass || ' ' || tgname || ' ' || tgenabled::text, ', ' ORDER BY tgrelid::regclass::text, tgname)
	FROM pg_trigger WHERE tgenabled = 'R'}),
   "feature_store.online_$id{bv} fs_online_replica_rows R, feature_store.online_$id{bv} fs_online_replica_truncate R, "
   . "feature_store.online_$id{kv} fs_online_replica_rows R, feature_store.online_$id{kv} fs_online_replica_truncate R, "
   . "feature_store.online_$id{rv} fs_online_replica_rows R, feature_store.online_$id{rv} fs_online_replica_truncate R, "
   . "khist fs_stream_$id{kv}_replica R, rhist fs_stream_$id{rv}_replica R",
   'replica-only triggers on the online tables and on the streaming source');
my $connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres', qq{
CREATE SUBSCRIPTION online_sub CONNECTION '$connstr' PUBLICATION online_pub;
CREATE SUBSCRIPTION source_sub CONNECTION '$connstr' PUBLICATION source_pub WITH (two_phase = true);
});
$sub->wait_for_subscription_sync($pub, 'online_sub');
$sub->wait_for_subscription_sync($pub, 'source_sub');

# What the subscriber serves for entities 0..21, and what it must serve: its own online table
# (or, for rv, the latest row of its own source).
sub served
{
	my ($view) = @_;
	return $sub->safe_psql('postgres', qq{
SELECT string_agg(i || ':' || coalesce(fs_online(fs_entity('ent', i), '$view') -> '$view' ->> 'v', '-'), ' ' ORDER BY i)
FROM generate_series(0, 21) i});
}
sub expected
{
	my ($view) = @_;
	my $from = $view eq 'rv'
	  ? q{(SELECT DISTINCT ON (id) id, v FROM rhist ORDER BY id, ts DESC)}
	  : "feature_store.online_$id{$view}";
	return $sub->safe_psql('postgres', qq{
SELECT string_agg(i || ':' || coalesce(o.v::text, '-'), ' ' ORDER BY i)
FROM generate_series(0, 21) i LEFT JOIN $from o ON o.id = i});
}
sub hits
{
	my ($view) = @_;
	return $sub->safe_psql('postgres', "SELECT coalesce(hits, 0) FROM fs_stat_online WHERE view = '$view'") || 0;
}
my $v1 = join(' ', '0:-', (map { "$_:1" } 1 .. 20), '21:-');
ok($sub->poll_query_until('postgres', q{SELECT worker_state = 'idle' FROM fs_stat_online WHERE view IS NULL}),
	'subscriber: cache worker idle');

for my $view (qw(bv kv rv))
{
	is(expected($view), $v1, "$view: the subscriber's table holds the publisher's rows");
	served($view);
	my $h0 = hits($view);
	is(served($view), $v1, "$view: served after the initial sync");
	cmp_ok(hits($view) - $h0, '>=', 20, "$view: from the cache (hits)");
}

my $runs = q{SELECT count(*) FROM fs_runs WHERE view = 'rv' AND kind = 'stream' AND outcome = 'success' AND rows_written = 1};
my $runs0 = $sub->safe_psql('postgres', $runs);
cmp_ok($runs0, '>=', 20, 'rv: the initial sync streamed too, row by row');
# New values for some keys on the publisher: a run of the batch view, a run of the other view
# (on the subscriber a stream-mode view), and rows of the replicated source.
$pub->safe_psql('postgres', q{
INSERT INTO bhist SELECT i, '2026-01-02', 2 FROM generate_series(1, 5) i;
INSERT INTO khist SELECT i, '2026-01-02', 2 FROM generate_series(1, 5) i;
INSERT INTO rhist SELECT i, '2026-01-02', 2 FROM generate_series(1, 5) i;
SELECT fs_materialize('bv', '2025-01-01', '2027-01-01');
SELECT fs_materialize('kv', '2025-01-01', '2027-01-01');
});
$pub->wait_for_catchup('online_sub');
$pub->wait_for_catchup('source_sub');
my $v2 = join(' ', '0:-', (map { "$_:2" } 1 .. 5), (map { "$_:1" } 6 .. 20), '21:-');
for my $view (qw(bv kv rv))
{
	is(expected($view), $v2, "$view: the subscriber's table has the new values");
	is(served($view), $v2, "$view: served at once after the apply worker's commit (not the cached old values)");
	my $h0 = hits($view);
	is(served($view), $v2, "$view: served again");
	cmp_ok(hits($view) - $h0, '>=', 15, "$view: from the cache again (only the changed keys were refilled)");
}
is($sub->safe_psql('postgres', $runs) - $runs0, 5, 'rv: each applied row was one stream run on the subscriber');

# An UPDATE and a DELETE applied by the subscription (the publisher's manual fix of online rows,
# as superuser), and a TRUNCATE: the whole view.
$pub->safe_psql('postgres', qq{
UPDATE feature_store.online_$id{bv} SET v = 3 WHERE id = 7;
DELETE FROM feature_store.online_$id{kv} WHERE id = 8;
UPDATE rhist SET v = 3, ts = '2026-01-03' WHERE id = 9;    -- a newer event: streams (same time would not)
});
$pub->wait_for_catchup('online_sub');
$pub->wait_for_catchup('source_sub');
(my $v3b = $v2) =~ s/ 7:1 / 7:3 /;
(my $v3k = $v2) =~ s/ 8:1 / 8:- /;
(my $v3r = $v2) =~ s/ 9:1 / 9:3 /;
is(served('bv'), $v3b, 'bv: an applied UPDATE is served at once');
is(served('kv'), $v3k, 'kv: an applied DELETE is served at once');
is(served('rv'), $v3r, 'rv: an applied UPDATE of the source streams');
is(expected('rv'), $v3r, 'rv: equal to the latest row of the subscriber\'s source');
$pub->safe_psql('postgres', "TRUNCATE feature_store.online_$id{bv}");
$pub->wait_for_catchup('online_sub');
is(served('bv'), join(' ', map { "$_:-" } 0 .. 21), 'bv: an applied TRUNCATE is served at once');
is(expected('bv'), served('bv'), 'bv: equal to the subscriber\'s table');

# The writes of a local session under session_replication_role = replica take the same path.
$sub->safe_psql('postgres', q{
SET session_replication_role = replica;
INSERT INTO rhist VALUES (21, '2026-01-03', 4);
UPDATE feature_store.online_} . $id{kv} . q{ SET v = 5 WHERE id = 1;
});
like(served('rv'), qr/ 21:4$/, 'a replica-role session\'s insert into the source streams');
like(served('kv'), qr/^0:- 1:5 /, 'a replica-role session\'s update of the online table is served at once');

# Not supported (documented): a prepared transaction applied by a two_phase subscription into a
# streaming source. Its PREPARE on the subscriber would write online rows, and is refused as
# every such PREPARE is (the cache is published at commit, in the committing session); the
# apply worker reports it and retries; the row is not served.
my $log = -s $sub->logfile;
$pub->safe_psql('postgres', q{
BEGIN;
INSERT INTO rhist VALUES (20, '2026-01-05', 6);
PREPARE TRANSACTION 'fs_two_phase';
COMMIT PREPARED 'fs_two_phase';
});
ok($sub->wait_for_log(qr/cannot prepare a transaction that changed online features/, $log),
	'two_phase: the apply worker\'s PREPARE is refused with the documented error');
like(served('rv'), qr/ 20:1 /, 'two_phase: the prepared row is not served');

$sub->stop;
$pub->stop;
done_testing();
