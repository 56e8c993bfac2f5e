# The registry survives pg_dump and restore (custom and plain formats): every entity, view
# version, feature and service comes back identical, sequences continue, and the restored
# registry is still write-protected and usable.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'feature_store'");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
CREATE EXTENSION feature_store;
CREATE TABLE driver_hourly_stats (driver_id bigint, event_timestamp timestamptz, created timestamptz,
                                  conv_rate float8, acc_rate float4, trips int, note text);
INSERT INTO driver_hourly_stats SELECT g % 10, '2026-01-01'::timestamptz + g * interval '1 hour', now(), g / 100.0, g / 50.0, g, 'n' || g
FROM generate_series(1, 100) g;
CREATE TABLE um_hist (user_id bigint, merchant_id int, event_ts timestamptz, txn_count int, amounts float8[]);
SELECT fs_register_entity('driver', 'driver_id', description => 'A driver');
SELECT fs_register_entity('user_merchant', ARRAY['user_id', 'merchant_id']);
SELECT fs_register_view('driver_stats', 'driver_hourly_stats', 'driver', ttl => '1 day',
                        description => 'v1', tags => '{"team": "rides"}');
SELECT fs_register_view('driver_stats', 'driver_hourly_stats', 'driver', created_time => 'created',
                        features => '{conv_rate,trips}', ttl => '2 days',
                        checks => '{"conv_rate": {"min": 0, "max": 1}}', online => false);
SELECT fs_register_view('um_stats', 'um_hist', 'user_merchant', 'event_ts');
SELECT fs_register_service('model_a', '{driver_stats:conv_rate,driver_stats@1:note,um_stats:*}', owner => 'ml@example.com');
SELECT fs_register_service('model_a', '{driver_stats:trips}');
-- an aggregation view (windows, a filter and a hop survive the dump)
CREATE TABLE purchases (user_id bigint, ts timestamptz, amount numeric, category text);
INSERT INTO purchases SELECT g % 7, '2026-01-01'::timestamptz + g * interval '37 minutes', g - 20, 'c' || (g % 3)
FROM generate_series(1, 300) g;
SELECT fs_register_entity('user', 'user_id');
SELECT fs_register_view('user_purchases', 'purchases', entity => 'user', event_time => 'ts',
                        aggregations => ARRAY['avg(amount) over ''7 days'' as avg_7d', 'count(*) over ''1 day''',
                                              'last(category) over ''2 days''', 'sum(amount)'],
                        filter => 'amount > 0 AND category <> ''c2''', hop => '1 hour');
CREATE TABLE agg_spine AS SELECT u::bigint AS user_id, '2026-01-03 10:30+00'::timestamptz + u * interval '5 hours' AS ts,
  10 * u + 1 AS amount FROM generate_series(0, 8) u;
-- a transform (two versions) and a service holding one
SELECT fs_register_transform('amount_ratio', 'amount / avg_7d', request => '{"amount": "numeric"}',
                             inputs => ARRAY['user_purchases:avg_7d'], returns => 'float8', owner => 'risk');
SELECT fs_register_transform('amount_ratio', '2 * amount / avg_7d', request => '{"amount": "numeric"}',
                             inputs => ARRAY['user_purchases:avg_7d'], returns => 'float8');
SELECT fs_register_service('fraud', ARRAY['user_purchases:count_1d', 'amount_ratio@1']);
});
my $agg_join = q{SELECT (SELECT string_agg(t::text, ',' ORDER BY user_id) FROM fs_point_in_time_join('agg_spine', '{user_purchases:*}', 'ts')
  AS t(user_id bigint, ts timestamptz, amount int, avg_7d numeric, count_1d bigint, last_category_2d text, sum_amount_lifetime numeric))
  || ' / ' || (SELECT string_agg(t::text, ',' ORDER BY user_id) FROM fs_point_in_time_join('agg_spine', '{amount_ratio,user_purchases:avg_7d}', 'ts')
  AS t(user_id bigint, ts timestamptz, amount int, amount_ratio float8, avg_7d numeric) WHERE amount_ratio = 2 * amount / avg_7d)
  || ' / ' || (SELECT string_agg(t::text, ',' ORDER BY user_id) FROM fs_point_in_time_join('agg_spine', '{fraud}', 'ts')
  AS t(user_id bigint, ts timestamptz, amount int, count_1d bigint, amount_ratio float8))};
my $agg_before = $node->safe_psql('src', $agg_join);
like($agg_before, qr/c1/, 'the aggregation view computes a training set before the dump');
like($agg_before, qr{ / .*\(3,.* / .*\(3,}, 'the transforms (latest version, and version 1 through the service) compute before the dump');

# An independent fingerprint of the registry: every row of every registry table, in key order.
my $catalog = q{
SELECT concat_ws(E'\n',
  (SELECT string_agg(format('%s|%s|%s|%s|%s|%s', name, join_keys, key_types, description, registered_by, created_at), E'\n' ORDER BY name) FROM feature_store.entity),
  (SELECT string_agg(v::text, E'\n' ORDER BY view_id) FROM feature_store.feature_view v),
  (SELECT string_agg(f::text, E'\n' ORDER BY view_id, position) FROM feature_store.view_feature f),
  (SELECT string_agg(s::text, E'\n' ORDER BY service_id) FROM feature_store.feature_service s),
  (SELECT string_agg(f::text, E'\n' ORDER BY service_id, position) FROM feature_store.service_feature f),
  (SELECT string_agg(concat_ws('|', name, version, is_latest, features), E'\n' ORDER BY name, version) FROM fs_services),
  (SELECT string_agg(t::text, E'\n' ORDER BY transform_id) FROM feature_store.transform t),
  (SELECT string_agg(x::text, E'\n' ORDER BY service_id, position) FROM feature_store.service_transform x))
};
my $before = $node->safe_psql('src', $catalog);
like($before, qr/driver_stats/, 'source registry is populated');
is($node->safe_psql('src', 'SELECT count(*) FROM fs_views'), '4', 'four view versions registered');

my $dumpdir = $node->basedir;
$node->command_ok(['pg_dump', '-Fc', '-f', "$dumpdir/src.dump", '-d', $node->connstr('src')], 'pg_dump custom format');
$node->command_ok(['pg_dump', '-Fp', '-f', "$dumpdir/src.sql", '-d', $node->connstr('src')], 'pg_dump plain format');

$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok(['pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), "$dumpdir/src.dump"], 'pg_restore into a fresh database');
is($node->safe_psql('dst', $catalog), $before, 'restored registry (custom format) is identical');
is($node->safe_psql('dst', $agg_join), $agg_before, 'the restored aggregation view computes the same training set');

$node->safe_psql('postgres', 'CREATE DATABASE dst2');
$node->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$dumpdir/src.sql", '-d', $node->connstr('dst2')], 'plain dump replays');
is($node->safe_psql('dst2', $catalog), $before, 'restored registry (plain format) is identical');

# The restored registry works: versions continue, ids come from the restored sequences.
is($node->safe_psql('dst', q{SELECT fs_register_view('driver_stats', 'driver_hourly_stats', 'driver', features => '{trips}')}),
   '3', 'a changed definition after restore becomes version 3');
is($node->safe_psql('dst', q{SELECT count(DISTINCT view_id) = count(*) AND min(view_id) > 0 FROM feature_store.feature_view}),
   't', 'view ids stay unique after restore');
is($node->safe_psql('dst', q{SELECT features FROM fs_services WHERE name = 'model_a' AND version = 1}),
   '{driver_stats:conv_rate,driver_stats@1:note,um_stats:txn_count,um_stats:amounts}', 'pinned and unpinned service references restored');

# ...and is still protected against direct writes by ordinary roles.
$node->safe_psql('dst', 'CREATE ROLE regress_plain LOGIN');
my ($ret, $out, $err) = $node->psql('dst', q{SET ROLE regress_plain; DELETE FROM feature_store.feature_view});
like($err, qr/permission denied for table feature_view/, 'registry tables stay read-only to ordinary roles after restore');

# Dropping and recreating the extension starts from an empty registry (no leftovers).
$node->safe_psql('dst2', 'DROP EXTENSION feature_store; CREATE EXTENSION feature_store');
is($node->safe_psql('dst2', 'SELECT count(*) FROM fs_views'), '0', 'DROP EXTENSION removes the registry');

$node->stop;
done_testing();
