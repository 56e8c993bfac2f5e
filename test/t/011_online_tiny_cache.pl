# A tiny cache (64kB: 16 pages of at most 48 entries) for 3000 entities: every lookup still equals the oracle, the
# cache stays within its capacity, and evictions are counted. A cluster without preloading
# answers the same from the durable tables and says how to enable the cache.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FsOnline;
use IPC::Run;

my $n = 3000;
my $node = FsOnline::new_node('tiny', '64kB');
FsOnline::load($node, $n);
ok($node->poll_query_until('postgres', "SELECT worker_state = 'idle' FROM fs_stat_online WHERE view IS NULL"),
	'worker idle');
my $oracle = FsOnline::oracle($node, $n);
is(FsOnline::answers($node, $n), $oracle, 'first pass equals the oracle');
is(FsOnline::answers($node, $n), $oracle, 'second pass equals the oracle');
my ($entries, $cap, $ev, $rt) = split /\|/, $node->safe_psql('postgres',
	"SELECT (SELECT entries FROM fs_stat_online WHERE view = 'stats'), capacity_bytes, "
	  . "(SELECT evictions FROM fs_stat_online WHERE view = 'stats'), "
	  . "(SELECT read_throughs FROM fs_stat_online WHERE view = 'stats') FROM fs_stat_online WHERE view IS NULL");
cmp_ok($cap, '<=', 65536, 'capacity within cache_size');
cmp_ok($entries, '<=', $cap / 4096 * 48, 'entries bounded by capacity (48 per 4 kB page)');
cmp_ok($ev, '>', 0, 'evictions counted');
cmp_ok($rt, '>', 0, 'misses read through to the durable table');
# the batch form over all entities at once, too
is($node->safe_psql('postgres', qq{SELECT string_agg(coalesce(features::text, 'NULL'), E'\\n')
	FROM fs_online_batch(ARRAY(SELECT fs_entity('ent', i) FROM generate_series(0, $n + 1) i))}),
	$oracle, 'batch form equals the oracle');

# Churn: 4 sessions look up random entities, single and batched, while their misses keep filling
# and evicting the 256 entries; readers take no lock, so each answer is checked against what the
# entity's row must be (trips = 10 id + 2, label 'label id/2', of varying length): a copy torn by
# a concurrent fill, or another key's entry, fails the statement (a division by zero that
# depends on the row: a constant one would fail at planning).
my $dir = PostgreSQL::Test::Utils::tempdir;
PostgreSQL::Test::Utils::append_to_file("$dir/one.sql", qq{\\set id random(1, $n)
SELECT CASE WHEN (f->'stats'->>'trips')::bigint = 10 * :id + 2 AND f->'stats'->>'label' = 'label ' || :id || '/2'
  THEN 1 ELSE 1 / (length(f::text) * 0) END FROM (SELECT fs_online(fs_entity('ent', :id::bigint)) f) s;
});
PostgreSQL::Test::Utils::append_to_file("$dir/many.sql", qq{\\set s random(1, $n - 99)
SELECT CASE WHEN count(*) FILTER (WHERE (features->'stats'->>'trips')::bigint = 10 * key + 2
  AND features->'stats'->>'label' = 'label ' || key || '/2') = 100 THEN 1 ELSE 1 / (count(*) * 0)::int END
FROM fs_online_batch_keys('stats', ARRAY(SELECT g::bigint FROM generate_series(:s, :s + 99) g));
});
my ($ev0, $hits0) = split /\|/, $node->safe_psql('postgres', "SELECT evictions, hits FROM fs_stat_online WHERE view = 'stats'");
my ($out, $err) = ('', '');
IPC::Run::run(['pgbench', '-n', '-c', '4', '-j', '2', '-T', '8', '-f', "$dir/one.sql\@3", '-f', "$dir/many.sql\@1",
	'-h', $node->host, '-p', $node->port, 'postgres'], '>', \$out, '2>', \$err);
like($out, qr/number of failed transactions: 0/, 'churn: every concurrent answer is the entity\'s own row')
  or diag($out, $err);
my ($tx) = $out =~ /number of transactions actually processed: (\d+)/;
cmp_ok($tx // 0, '>', 1000, 'churn: enough lookups (' . ($tx // 0) . ')');
my ($ev1, $hits1) = split /\|/, $node->safe_psql('postgres', "SELECT evictions, hits FROM fs_stat_online WHERE view = 'stats'");
cmp_ok($ev1 - $ev0, '>', 1000, 'churn: entries were evicted meanwhile (' . ($ev1 - $ev0) . ')');
cmp_ok($hits1 - $hits0, '>', 0, 'churn: and the cache served hits (' . ($hits1 - $hits0) . ')');
$node->stop;

# Without preloading: same answers, and a NOTICE with the hint.
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
FsOnline::load($plain, 50);
is(FsOnline::answers($plain, 50), FsOnline::oracle($plain, 50), 'without the cache: answers equal the oracle');
my ($ret, $out, $err) = $plain->psql('postgres', "SELECT fs_online('ent:1') IS NOT NULL");
like($err, qr/online cache is not active.*\n.*HINT:.*shared_preload_libraries/s, 'NOTICE says how to enable the cache');
is($plain->safe_psql('postgres', "SELECT worker_state FROM fs_stat_online WHERE view IS NULL"), 'disabled',
	'fs_stat_online reports the cache as disabled');
$plain->stop;
done_testing();
