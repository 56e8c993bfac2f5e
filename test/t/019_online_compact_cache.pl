# The compact cache (4 kB pages of variable-size entries): rows of every size up to the limit are
# cached and served as the online table has them, rows over it are served from the table
# (declined, counted); a small cache_size evicts (counted) and still answers like the table,
# under concurrent lookups and writes; bytes per entity in fs_stat_online; fs_online_vector's
# float8 values equal the source's, bit for bit. Oracles: the source tables, by plain SQL.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FsOnline;
use IPC::Run;

my $node = FsOnline::new_node('compact', '256kB');
$node->safe_psql('postgres', q{
CREATE EXTENSION feature_store;
SELECT fs_register_entity('doc', 'id');
-- payload sizes from 1 byte of text to well over the 1024-byte limit (key image + payload)
CREATE TABLE docs (id bigint, ts timestamptz, body text, n bigint);
INSERT INTO docs SELECT i, '2026-01-01', repeat(chr(97 + i % 26), CASE WHEN i <= 1300 THEN i ELSE 1 + i % 1000 END), i * 7
FROM generate_series(1, 3000) i;
SELECT fs_register_view('sized', 'docs', 'doc', event_time => 'ts');
SELECT fs_materialize('sized', '2025-01-01', '2027-01-01');
-- float8 and numeric edge values for the vector form
CREATE TABLE nums (id bigint, ts timestamptz, x float8, y numeric, b boolean);
INSERT INTO nums VALUES
 (1, '2026-01-01', 0.1 + 0.2, 12345678901234567890.123456789, true),
 (2, '2026-01-01', 1e-300, -0.000000000000000000000001234, false),
 (3, '2026-01-01', -1.7976931348623157e308, 1e20, NULL),
 (4, '2026-01-01', 2.2250738585072014e-308, 0, true),
 (5, '2026-01-01', 9007199254740993, 9007199254740993, true),
 (6, '2026-01-01', -0.8123934623483410, 0.8123934623483410, false),
 (7, '2026-01-01', 123456789012.25, -123456789012.25, true),
 (8, '2026-01-01', NULL, 1e-22, true);
INSERT INTO nums SELECT 100 + i, '2026-01-01', (i % 9973) / 9973.0 * (10 ^ (i % 40 - 20)),
       round((random() * 1e6)::numeric, i % 12), i % 2 = 0
FROM generate_series(1, 3000) i;
SELECT fs_register_view('numv', 'nums', 'doc', event_time => 'ts');
SELECT fs_materialize('numv', '2025-01-01', '2027-01-01');
});
ok($node->poll_query_until('postgres', "SELECT worker_state = 'idle' FROM fs_stat_online WHERE view IS NULL"),
	'worker idle');

# Oracle of one entity of `sized`: the source row as fs_online's shape.
my $oracle_sized = q{SELECT string_agg(CASE WHEN id IS NULL THEN 'NULL' ELSE jsonb_build_object('sized', jsonb_build_object('body', body, 'n', n))::text END, E'\n' ORDER BY g)
  FROM generate_series(0, 3001) g LEFT JOIN docs ON id = g};
my $answers_sized = q{SELECT string_agg(coalesce(fs_online(fs_entity('doc', g), 'sized')::text, 'NULL'), E'\n' ORDER BY g)
  FROM generate_series(0, 3001) g};
my $oracle = $node->safe_psql('postgres', $oracle_sized);
is($node->safe_psql('postgres', $answers_sized), $oracle, 'rows of every size: first pass (fills) equals the table');
is($node->safe_psql('postgres', $answers_sized), $oracle, 'second pass (hits and misses of a full cache) equals the table');
is($node->safe_psql('postgres', q{SELECT string_agg(coalesce(features::text, 'NULL'), E'\n' ORDER BY key)
  FROM fs_online_batch_keys('sized', ARRAY(SELECT g::bigint FROM generate_series(0, 3001) g))}),
	$oracle, 'batch form equals the table');

# Near the limit: a small cache of few entries, rows just under and just over the limit.
my ($declined0) = $node->safe_psql('postgres', "SELECT declined FROM fs_stat_online WHERE view = 'sized'");
cmp_ok($declined0, '>', 0, "rows over the limit are declined ($declined0)");
my $near = q{SELECT string_agg((fs_online(fs_entity('doc', g), 'sized') = jsonb_build_object('sized', jsonb_build_object('body', body, 'n', n)))::text, ',' ORDER BY g)
  FROM docs JOIN generate_series(900, 1000) g ON id = g};
$node->safe_psql('postgres', $near);
my ($hits0) = $node->safe_psql('postgres', "SELECT hits FROM fs_stat_online WHERE view = 'sized'");
is($node->safe_psql('postgres', $near), join(',', ('true') x 101), 'rows near the limit answer like the table');
my ($hits1) = $node->safe_psql('postgres', "SELECT hits FROM fs_stat_online WHERE view = 'sized'");
cmp_ok($hits1 - $hits0, '>', 0, 'and some of them are cached (' . ($hits1 - $hits0) . ' hits)');

# Evictions are counted; memory stays within the capacity.
my ($ev, $bytes, $entries, $cap) = split /\|/, $node->safe_psql('postgres',
	q{SELECT evictions, bytes_used, entries, capacity_bytes FROM fs_stat_online WHERE view IS NULL});
cmp_ok($ev, '>', 0, "evictions counted ($ev)");
cmp_ok($cap, '<=', 256 * 1024, 'capacity within cache_size');
cmp_ok($bytes, '<=', $cap, "bytes in use ($bytes) within capacity ($cap)");

# Churn: 4 sessions read random entities while a fifth rewrites rows of `sized` (new sizes, so
# entries are replaced, evicted and compacted) and materializes. Every row keeps what ties it to
# its key (a body of the letter chr(97 + id % 26), n = 7 id + 7 k), which each reader checks on
# its answer (a copy torn by a concurrent fill or compaction, or another key's entry, fails the
# statement by a division by zero that depends on the row).
my $dir = PostgreSQL::Test::Utils::tempdir;
PostgreSQL::Test::Utils::append_to_file("$dir/read.sql", q{\set id random(1, 3000)
SELECT CASE WHEN f IS NULL OR (f->'sized'->>'body' = repeat(chr(97 + :id % 26), length(f->'sized'->>'body'))
  AND (f->'sized'->>'n')::bigint >= 7 * :id AND (f->'sized'->>'n')::bigint % 7 = 0)
  THEN 1 ELSE 1 / (length(f::text) * 0) END FROM (SELECT fs_online(fs_entity('doc', :id::bigint), 'sized') f) s;
});
PostgreSQL::Test::Utils::append_to_file("$dir/write.sql", q{\set id random(1, 1200)
UPDATE docs SET body = repeat(chr(97 + id % 26), 1 + (length(body) * 7 + :id) % 900), n = n + 7 WHERE id = :id;
SELECT fs_materialize('sized', '2025-01-01', '2027-01-01');
});
my ($out, $err) = ('', '');
my $reader = IPC::Run::start(['pgbench', '-n', '-c', '4', '-j', '2', '-T', '8', '-f', "$dir/read.sql",
	'-h', $node->host, '-p', $node->port, 'postgres'], '>', \$out, '2>', \$err);
my ($wout, $werr) = ('', '');
IPC::Run::run(['pgbench', '-n', '-c', '1', '-T', '8', '-f', "$dir/write.sql",
	'-h', $node->host, '-p', $node->port, 'postgres'], '>', \$wout, '2>', \$werr);
$reader->finish;
like($out, qr/number of failed transactions: 0/, 'churn: every concurrent answer is its key\'s row')
  or diag($out, $err);
my ($tx) = $out =~ /number of transactions actually processed: (\d+)/;
cmp_ok($tx // 0, '>', 500, 'churn: enough lookups (' . ($tx // 0) . ')');
like($wout, qr/number of failed transactions: 0/, 'churn: writes committed') or diag($wout, $werr);
is($node->safe_psql('postgres', $answers_sized), $node->safe_psql('postgres', $oracle_sized),
	'after the churn every answer equals the table');

# The vector form: float8 values exactly the source's (float8 features) and numeric::float8
# (numeric features), booleans 1/0, NULL kept.
my $vec_ok = q{SELECT count(*) FILTER (WHERE v IS DISTINCT FROM ARRAY[x, y::float8, CASE WHEN b THEN 1 WHEN NOT b THEN 0 END]::float8[]), count(*)
  FROM (SELECT n.*, fs_online_vector(fs_entity('doc', id), 'numv') v FROM nums n) s};
is($node->safe_psql('postgres', $vec_ok), '0|3008', 'fs_online_vector equals the source values (first pass)');
is($node->safe_psql('postgres', $vec_ok), '0|3008', 'fs_online_vector equals the source values (cached)');

# Bytes per entity: a 4-feature row like the benchmark's (two float8, a bigint, a short text)
# takes less than its served jsonb, which the cache held whole before (payload + 264 - 155).
my $small = FsOnline::new_node('bytes', '8MB');
$small->safe_psql('postgres', q{
CREATE EXTENSION feature_store;
CREATE TABLE u (user_id bigint, ts timestamptz, f_float1 float8, f_float2 float8, f_int1 bigint, f_text1 text);
INSERT INTO u SELECT g, '2026-01-01', (g % 9973) / 9973.0, g * 0.25, g % 1000, 'seg' || (g % 7) FROM generate_series(1, 20000) g;
SELECT fs_register_entity('user', 'user_id');
SELECT fs_register_view('user_stats', 'u', 'user', event_time => 'ts');
SELECT fs_materialize('user_stats', '2025-01-01', '2027-01-01');
});
ok($small->poll_query_until('postgres', "SELECT entries = 20000 FROM fs_stat_online WHERE view = 'user_stats'"),
	'all 20000 entities cached');
my ($per, $jsonb) = split /\|/, $small->safe_psql('postgres', q{
SELECT (SELECT bytes_used / entries FROM fs_stat_online WHERE view = 'user_stats'),
       (SELECT avg(pg_column_size(fs_online(fs_entity('user', user_id), 'user_stats')))::int FROM u)});
cmp_ok($per, '<', $jsonb, "bytes per entity ($per) below the served jsonb alone ($jsonb)");
$small->stop;
$node->stop;
done_testing();
