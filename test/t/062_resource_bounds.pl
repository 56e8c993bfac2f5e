# Resource bounds: very large feature values (a 1 MB text, a 10,000-element array)
# with a 64 kB cache (smaller than one such row), and 500 online views of one entity: shared
# memory stays what feature_store.cache_size says, answers stay exact (compared with the
# source), oversized rows are declined and counted, limits give clear errors, nothing crashes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FsOnline;

my $node = FsOnline::new_node('bounds', '64kB');
my $shmem_sql = q{SELECT coalesce(sum(allocated_size), 0) FROM pg_shmem_allocations WHERE name ILIKE '%feature%store%' OR name ILIKE 'fs %' OR name ILIKE 'feature_store%'};
my $shmem0 = $node->safe_psql('postgres', $shmem_sql);
cmp_ok($shmem0, '>', 0, "feature_store's shared memory is visible ($shmem0 bytes)");
cmp_ok($shmem0, '<', 1024 * 1024, 'and bounded by the 64kB cache_size plus fixed control data');

$node->safe_psql('postgres', q{
CREATE EXTENSION feature_store;
CREATE TABLE big (id bigint, ts timestamptz, t text, arr float8[], small int);
INSERT INTO big SELECT 1, now() - interval '1 hour',
       (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 32768) g),   -- 1 MB
       (SELECT array_agg(g / 7.0) FROM generate_series(1, 10000) g), 1;
INSERT INTO big SELECT 2, now() - interval '1 hour', 'short', '{1,2}', 2;
SELECT fs_register_entity('b', 'id');
SELECT fs_register_view('big', 'big', 'b', event_time => 'ts');
SELECT fs_materialize('big', now() - interval '1 day', now());
CREATE TABLE spine_b (id bigint, ts timestamptz);
INSERT INTO spine_b VALUES (1, now()), (2, now());
});
is($node->safe_psql('postgres', q{SELECT length(t) FROM big WHERE id = 1}), '1048576', 'a 1 MB text value');
for my $round (1 .. 3)
{
	is($node->safe_psql('postgres', q{
SELECT (fs_online('b:1', 'big') -> 'big' ->> 't') = t AND (fs_online('b:1', 'big') -> 'big' -> 'arr') = to_jsonb(arr)
   AND (fs_online('b:2', 'big') -> 'big' ->> 't') = 'short'
FROM big WHERE id = 1}), 't', "round $round: the 1 MB text and the 10k array are served exactly");
}
is($node->safe_psql('postgres', q{SELECT md5(string_agg(value::text, ',' ORDER BY feature)) = (SELECT md5(string_agg(x, ',' ORDER BY f)) FROM big,
      LATERAL (VALUES ('arr', to_jsonb(arr)::text), ('small', to_jsonb(small)::text), ('t', to_jsonb(t)::text)) v(f, x) WHERE id = 1)
FROM fs_online_detail('b:1', 'big')}), 't', 'fs_online_detail serves them exactly');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM fs_point_in_time_join('spine_b', '{big:t,big:arr}', spine_time => 'ts') AS p(id bigint, ts timestamptz, t text, arr float8[])
JOIN big USING (id) WHERE p.t = big.t AND p.arr = big.arr}), '2', 'the point-in-time join returns them exactly');
ok($node->poll_query_until('postgres', q{SELECT worker_state = 'idle' AND last_error IS NULL FROM fs_stat_online WHERE view IS NULL}),
	'the worker loaded the view without error');
my ($declined, $entries) = split /\|/, $node->safe_psql('postgres', q{SELECT declined, entries FROM fs_stat_online WHERE view = 'big'});
cmp_ok($declined, '>', 0, "the oversized row is declined by the cache and counted ($declined)");
cmp_ok($entries, '<=', 1, "only the small row can be cached ($entries entries)");

# 500 online views of one entity.
$node->safe_psql('postgres', q{
CREATE TABLE many (id bigint, ts timestamptz, x int);
INSERT INTO many SELECT i, now() - interval '1 minute', i * 10 FROM generate_series(1, 20) i;
SELECT fs_register_entity('m', 'id');
DO $$ BEGIN
  FOR i IN 1 .. 500 LOOP
    PERFORM fs_register_view('mv_' || i, 'many', 'm', event_time => 'ts');
    PERFORM fs_materialize('mv_' || i, now() - interval '1 hour', now());
  END LOOP;
END $$;
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM fs_views WHERE name LIKE 'mv\_%'}), '500', '500 views registered and materialized');
ok($node->poll_query_until('postgres', q{SELECT worker_state = 'idle' FROM fs_stat_online WHERE view IS NULL}), 'worker idle after 500 views');
is($node->safe_psql('postgres', $shmem_sql), $shmem0, 'shared memory unchanged by 500 views and 1 MB rows');
for my $round (1 .. 2)
{
	is($node->safe_psql('postgres', q{
SELECT count(*) FROM generate_series(1, 500) v, generate_series(1, 20, 7) i
WHERE (fs_online(fs_entity('m', i), 'mv_' || v) -> ('mv_' || v) ->> 'x')::int IS DISTINCT FROM i * 10}),
		'0', "round $round: every one of the 500 views serves the right value by name");
}
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT fs_online('m:1')});
like($err, qr/too many feature views in one online lookup/,
	'the all-views form over more than 256 views of one entity is a clear error (documented limit)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM fs_online_batch(ARRAY['m:1', 'm:2']::fs_entity[], 'mv_500') WHERE features IS NOT NULL}),
	'2', 'batch lookups by view name work with 500 views');
is($node->safe_psql('postgres', q{SELECT count(*) <= 257 FROM fs_stat_online}), 't', 'statistics rows are bounded by the view slots');
# Dropping views frees their slots; the all-views form works again under the limit.
$node->safe_psql('postgres', q{DO $$ BEGIN FOR i IN 201 .. 500 LOOP PERFORM fs_drop_view('mv_' || i); END LOOP; END $$});
is($node->safe_psql('postgres', q{SELECT (SELECT count(*) FROM jsonb_object_keys(fs_online('m:3')))}), '200',
	'after dropping 300 views the all-views form serves the 200 left');
is($node->safe_psql('postgres', q{SELECT count(*) FROM generate_series(1, 200) v WHERE (fs_online('m:3') -> ('mv_' || v) ->> 'x')::int <> 30}),
	'0', 'with the right values');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|TRAP:|PANIC/, 'no crash');
$node->stop;
done_testing();
