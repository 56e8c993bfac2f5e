# Read-after-commit for aggregation views, under concurrency: 8 pgbench readers call fs_online on
# an aggregation view while 4 writers insert events (at random past times: late rows) into its
# source for the same 3 hot keys, in transactions that commit or abort at random, with sleeps
# inside to widen the races; a fifth writer deletes and re-inserts whole keys' cold rows. Each
# event's value is a version number (the writer's clock in microseconds). Afterwards a checker
# proves that no read
#   - returned the version of a transaction that aborted (max(v) is a committed version),
#   - counted fewer events than had been committed (COMMIT returned) before the read started,
#   - missed a version whose COMMIT had returned before the read started (max(v) too old),
#   - counted more events than were ever committed,
# and that at the end every key's answer equals the brute-force SQL over the source.
# Sensitivity, seen once: reading the events under the statement's snapshot (taken before the
# reader's clock_timestamp()) instead of a new one at the lookup failed the two staleness checks
# (5 and 6 of 33,676 reads), as a commit between the two went unseen.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FsOnline;

my $node = FsOnline::new_node('aggconc', '1MB', "max_connections = 40\n");
$node->safe_psql('postgres', q{
CREATE EXTENSION feature_store;
CREATE TABLE aev (id bigint, ts timestamptz, v bigint);
CREATE INDEX ON aev (id, ts);
INSERT INTO aev SELECT i, now() - interval '2 days', 0 FROM generate_series(1, 10) i;
SELECT fs_register_entity('aent', 'id');
SELECT fs_register_view('a', 'aev', 'aent', event_time => 'ts',
                        aggregations => ARRAY['count(*) as n', 'max(v) as mx', 'sum(v) as s', 'count(*) over ''1 day'' as n1d']);
CREATE TABLE committed (id bigint, ver bigint);           -- written inside the writing transaction
INSERT INTO committed SELECT i, 0 FROM generate_series(1, 10) i;
CREATE UNLOGGED TABLE commit_done (id bigint, ver bigint, at timestamptz);  -- after COMMIT returned
CREATE UNLOGGED TABLE attempts (id bigint, ver bigint);
CREATE UNLOGGED TABLE reads (id bigint, n bigint, mx bigint, s numeric, started timestamptz);
});

my $dir = PostgreSQL::Test::Utils::tempdir;
open my $r, '>', "$dir/reader.sql" or die;
print $r q{\set k random(1, 3)
INSERT INTO reads SELECT :k, (f -> 'a' ->> 'n')::bigint, (f -> 'a' ->> 'mx')::bigint, (f -> 'a' ->> 's')::numeric, s
FROM (SELECT clock_timestamp() AS s, fs_online(fs_entity('aent', :k), 'a') AS f OFFSET 0) x;
};
close $r;
open my $w, '>', "$dir/writer.sql" or die;
print $w q{\set k random(1, 3)
\set commit random(0, 2)
\set pause random(0, 3)
\set back random(1, 3000)
SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint AS ver \gset
INSERT INTO attempts VALUES (:k, :ver);
BEGIN;
INSERT INTO aev VALUES (:k, clock_timestamp() - :back * interval '1 minute', :ver);
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
# cold keys churn: deleted and written again in one transaction (never the hot keys 1..3)
open my $c, '>', "$dir/churn.sql" or die;
print $c q{\set k random(4, 10)
BEGIN;
DELETE FROM aev WHERE id = :k;
INSERT INTO aev VALUES (:k, now() - interval '2 days', 0);
COMMIT;
};
close $c;

my @conn = ('-h', $node->host, '-p', $node->port, 'postgres');
# batch: every answer computed at the lookup; stream: answers cached, the source's triggers
# invalidating the keys written (online_agg_cache.c)
for my $mode ('batch', 'stream')
{
	$node->safe_psql('postgres', "SELECT fs_set_online_mode('a', '$mode'); TRUNCATE reads, attempts, commit_done");
	my ($wout, $werr, $cout, $cerr, $rout, $rerr) = ('', '', '', '', '', '');
	my $writers = IPC::Run::start(['pgbench', '-n', '-c', '4', '-j', '1', '-T', '12', '-f', "$dir/writer.sql", @conn],
		'>', \$wout, '2>', \$werr);
	my $churn = IPC::Run::start(['pgbench', '-n', '-c', '1', '-j', '1', '-T', '12', '-f', "$dir/churn.sql", @conn],
		'>', \$cout, '2>', \$cerr);
	IPC::Run::run(['pgbench', '-n', '-c', '8', '-j', '2', '-T', '10', '-f', "$dir/reader.sql", @conn],
		'>', \$rout, '2>', \$rerr);
	$writers->finish;
	$churn->finish;
	like($rout, qr/number of failed transactions: 0/, "$mode: readers ran without errors") or diag($rout, $rerr);
	like($wout, qr/number of failed transactions: 0/, "$mode: writers ran without errors") or diag($wout, $werr);
	like($cout, qr/number of failed transactions: 0/, "$mode: the churning writer ran without errors") or diag($cout, $cerr);

	my ($nreads, $ncommits, $naborted) = split /\|/, $node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM reads), (SELECT count(*) FROM commit_done),
	       (SELECT count(*) FROM attempts a WHERE NOT EXISTS (SELECT 1 FROM committed c WHERE c.id = a.id AND c.ver = a.ver))});
	cmp_ok($nreads, '>', 500, "$mode: enough reads ($nreads)");
	cmp_ok($ncommits, '>', 50, "$mode: enough commits ($ncommits)");
	cmp_ok($naborted, '>', 20, "$mode: some writing transactions aborted ($naborted)");

	is($node->safe_psql('postgres', q{SELECT count(*) FROM reads r WHERE NOT EXISTS (SELECT 1 FROM committed c WHERE c.id = r.id AND c.ver = r.mx)}),
		'0', "$mode: no read returned a version of an aborted transaction");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM reads r
		WHERE EXISTS (SELECT 1 FROM commit_done d WHERE d.id = r.id AND d.ver > r.mx AND d.at < r.started)}),
		'0', "$mode: no read missed a version whose COMMIT had returned before it started");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM reads r
		WHERE r.n < 1 + (SELECT count(*) FROM commit_done d WHERE d.id = r.id AND d.at < r.started)}),
		'0', "$mode: no read counted fewer events than were committed before it started");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM reads r
		WHERE r.n > (SELECT count(*) FROM committed c WHERE c.id = r.id)}),
		'0', "$mode: no read counted an event that was never committed");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM generate_series(1, 10) i
		WHERE fs_online(fs_entity('aent', i), 'a') -> 'a' IS DISTINCT FROM
		      (SELECT jsonb_build_object('n', count(*), 'mx', max(v), 's', sum(v),
		                                 'n1d', count(*) FILTER (WHERE ts >= now() - interval '1 day'))
		       FROM aev WHERE id = i AND ts < now())}),
		'0', "$mode: final answers equal the brute-force SQL over the source");
	if ($mode eq 'stream')
	{
		my ($hits, $fills) = split /\|/, $node->safe_psql('postgres', "SELECT hits, read_throughs FROM fs_stat_online WHERE view = 'a'");
		cmp_ok($hits, '>', 100, "stream: answers were served from the cache ($hits hits, $fills computed)");
	}
}
$node->stop;
done_testing();
