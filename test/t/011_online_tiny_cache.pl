# A tiny cache (64kB: 256 entries) for 3000 entities: every lookup still equals the oracle, the
# cache stays within its capacity, and evictions are counted. A cluster without preloading
# answers the same from the durable tables and says how to enable the cache.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FsOnline;

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
cmp_ok($entries, '<=', 256, 'entries bounded by capacity');
cmp_ok($ev, '>', 0, 'evictions counted');
cmp_ok($rt, '>', 0, 'misses read through to the durable table');
# the batch form over all entities at once, too
is($node->safe_psql('postgres', qq{SELECT string_agg(coalesce(features::text, 'NULL'), E'\\n')
	FROM fs_online_batch(ARRAY(SELECT fs_entity('ent', i) FROM generate_series(0, $n + 1) i))}),
	$oracle, 'batch form equals the oracle');
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
