-- Registry: entities, feature views (versions), feature services, catalog views, drops.
CREATE EXTENSION feature_store;

CREATE TABLE driver_hourly_stats (
    driver_id bigint, event_timestamp timestamptz, created timestamptz,
    conv_rate float8, acc_rate float4, avg_daily_trips int, note text);
CREATE TABLE customer_profile (
    customer_id text, ts timestamp, current_balance numeric, life_time_value numeric, tier text);
CREATE TABLE user_merchant_history (
    user_id bigint, merchant_id int, event_ts timestamptz, txn_count int, amounts float8[], meta jsonb, flag bool);

-- Entities: single key (text form), composite key, explicit types.
SELECT fs_register_entity('driver', 'driver_id', description => 'A driver');
SELECT fs_register_entity('customer', ARRAY['customer_id']);
SELECT fs_register_entity('user_merchant', ARRAY['user_id', 'merchant_id'], key_types => '{bigint,integer}');
SELECT entity, join_keys, key_types, description FROM fs_entities ORDER BY entity;

-- The short call from the README: features default to every other column.
SELECT fs_register_view('driver_stats', 'driver_hourly_stats', entity => 'driver',
                        event_time => 'event_timestamp', ttl => '1 day');
SELECT name, version, is_latest, source, entity, event_time, created_time, ttl, online_mode, n_features
FROM fs_views ORDER BY name, version;
SELECT view, version, position, feature, type, reference FROM fs_features ORDER BY view, version, position;
-- key types were fixed by the first view
SELECT key_types FROM fs_entities WHERE entity = 'driver';

-- Identical re-registration is a no-op (same version, no new row).
SELECT fs_register_view('driver_stats', 'driver_hourly_stats', entity => 'driver',
                        event_time => 'event_timestamp', ttl => '1 day');
SELECT count(*) FROM fs_views WHERE name = 'driver_stats';
-- Metadata-only change: same version, metadata updated in place.
SELECT fs_register_view('driver_stats', 'driver_hourly_stats', entity => 'driver',
                        event_time => 'event_timestamp', ttl => '1 day',
                        description => 'hourly driver stats', owner => 'ml@example.com', tags => '{"team": "rides"}');
SELECT name, version, description, owner, tags FROM fs_views WHERE name = 'driver_stats';
-- A changed definition creates version 2; version 1 stays readable.
SELECT fs_register_view('driver_stats', 'driver_hourly_stats', entity => 'driver',
                        event_time => 'event_timestamp', created_time => 'created',
                        features => ARRAY['conv_rate', 'acc_rate', 'avg_daily_trips'], ttl => '2 days',
                        checks => '{"conv_rate": {"not_null": true, "min": 0, "max": 1}}');
SELECT name, version, is_latest, created_time, ttl, n_features, checks FROM fs_views WHERE name = 'driver_stats' ORDER BY version;
SELECT view, version, feature, checks, reference FROM fs_features WHERE view = 'driver_stats' ORDER BY version, position;

-- Other sources: timestamp (without tz) event time, composite keys, arrays/jsonb/bool features, offline only.
SELECT fs_register_view('customer_profile', 'customer_profile', 'customer', event_time => 'ts', online => false);
SELECT fs_register_view('user_merchant_stats', 'user_merchant_history', 'user_merchant', 'event_ts',
                        checks => '{"txn_count": {"min": 0}, "flag": {"not_null": true}}');
SELECT name, version, entity, join_keys, online_mode, n_features FROM fs_views WHERE is_latest ORDER BY name;
-- A view over a view, and a partitioned source.
CREATE VIEW driver_stats_v AS SELECT driver_id, event_timestamp, conv_rate * 100 AS conv_pct FROM driver_hourly_stats;
SELECT fs_register_view('driver_pct', 'driver_stats_v', 'driver');
CREATE TABLE driver_part (driver_id bigint, event_timestamp timestamptz, trips int) PARTITION BY RANGE (event_timestamp);
SELECT fs_register_view('driver_part', 'driver_part', 'driver');

-- Services: view:feature, view:*, pinned view@N:feature; one row per version.
SELECT fs_register_service('driver_model', ARRAY['driver_stats:conv_rate', 'driver_stats@1:note', 'customer_profile:*']);
SELECT name, version, is_latest, features FROM fs_services ORDER BY name, version;
SELECT fs_register_service('driver_model', ARRAY['driver_stats:conv_rate', 'driver_stats@1:note', 'customer_profile:*']);
SELECT fs_register_service('driver_model', ARRAY['driver_stats:conv_rate', 'driver_stats:acc_rate']);
SELECT name, version, is_latest, features FROM fs_services ORDER BY name, version;
-- a service may include another service's features
SELECT fs_register_service('bigger_model', ARRAY['driver_model', 'user_merchant_stats:txn_count']);
SELECT features FROM fs_services WHERE name = 'bigger_model';

-- Drops: a view used by a service cannot go without cascade.
SELECT fs_drop_view('driver_stats');
SELECT fs_drop_view('driver_stats@1', cascade => true);
SELECT fs_drop_view('driver_pct');
SELECT name, version FROM fs_services ORDER BY name, version;
SELECT name, version FROM fs_views WHERE name = 'driver_stats';
SELECT fs_drop_service('driver_model@2');
SELECT fs_drop_service('bigger_model');
SELECT fs_drop_view('driver_stats');
SELECT count(*) FROM feature_store.view_feature f WHERE NOT EXISTS (SELECT 1 FROM feature_store.feature_view v WHERE v.view_id = f.view_id);
SELECT fs_drop_view('driver_part');
SELECT fs_drop_entity('customer');
SELECT fs_drop_view('customer_profile');
SELECT fs_drop_entity('customer');
SELECT entity FROM fs_entities ORDER BY 1;
SELECT name, version FROM fs_views ORDER BY 1, 2;
