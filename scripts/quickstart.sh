#!/usr/bin/env bash
# The whole feature_store flow on a bundled example, printing each step's SQL and its result:
# installs what is missing, builds, starts a throwaway cluster (pg_cron and feature_store
# preloaded), registers entities, views and a service, shows the catalog, and stops the cluster.
#   scripts/quickstart.sh          run and clean up
#   scripts/quickstart.sh --keep   leave the cluster running and print how to connect / stop it
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

"$FS_ROOT/scripts/install-deps.sh"
fs_private_install fs_quickstart

DATA=$W/data
SOCK=$W
stop_cluster() { fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true; }
if [ $KEEP -eq 0 ]; then trap 'stop_cluster; rm -rf "$W"' EXIT; fi

fs_log "starting a throwaway cluster in $DATA (unix socket only)"
fs_as_pg_user "$FS_BINDIR/initdb" -D "$DATA" -A trust -U postgres >/dev/null
cat >> "$DATA/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$SOCK'
port = 5432
shared_preload_libraries = 'pg_cron, feature_store'
cron.database_name = 'quickstart'
feature_store.database = 'quickstart'
CONF
fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$DATA" -l "$W/server.log" -w start >/dev/null
fs_as_pg_user "$FS_BINDIR/createdb" -h "$SOCK" -U postgres quickstart

PSQL=("$FS_BINDIR/psql" -X -h "$SOCK" -U postgres -d quickstart -v ON_ERROR_STOP=1 --pset=footer=off)
step() {  # step "what it shows" "SQL"
  printf '\n\033[1;34m-- %s\033[0m\n' "$1"
  printf '%s\n' "$2" | sed 's/^/   /'
  fs_as_pg_user "${PSQL[@]}" -c "$2" | sed 's/^/   | /'
}

fs_log "loading the example: driver_hourly_stats (5 drivers x 48 hours), customer_daily_profile, ride_requests"
fs_as_pg_user "${PSQL[@]}" -q -f "$FS_ROOT/scripts/example_data.sql" >/dev/null

step "Install the extension" "CREATE EXTENSION pg_cron; CREATE EXTENSION feature_store;"
step "Entities: the keys features hang off" \
"SELECT fs_register_entity('driver', 'driver_id', description => 'A taxi driver');
SELECT fs_register_entity('customer', 'customer_id', description => 'A rider');"
step "Feature views over history tables (features default to every other column)" \
"SELECT fs_register_view('driver_stats', 'driver_hourly_stats', entity => 'driver',
       event_time => 'event_timestamp', created_time => 'created', ttl => '1 day',
       checks => '{\"conv_rate\": {\"min\": 0, \"max\": 1}}', owner => 'ml@example.com');
SELECT fs_register_view('customer_profile', 'customer_daily_profile', entity => 'customer', ttl => '2 days');"
step "Re-registering a changed view creates version 2; version 1 stays readable as driver_stats@1" \
"SELECT fs_register_view('driver_stats', 'driver_hourly_stats', entity => 'driver',
       event_time => 'event_timestamp', created_time => 'created', ttl => '2 days',
       checks => '{\"conv_rate\": {\"min\": 0, \"max\": 1}}', owner => 'ml@example.com');"
step "Feature services: the features one model consumes, in order" \
"SELECT fs_register_service('ride_model', ARRAY['driver_stats:conv_rate', 'driver_stats:acc_rate',
       'driver_stats:avg_daily_trips', 'customer_profile:current_balance']);
SELECT fs_register_service('driver_ranker', ARRAY['driver_stats:conv_rate', 'driver_stats:acc_rate']);"
step "The catalog" \
"SELECT name, version, is_latest, source, entity, ttl, online_mode, n_features FROM fs_views ORDER BY name, version;
SELECT name, version, features FROM fs_services ORDER BY name;"

step "Training: a point-in-time join of the ride requests (the spine) with the model's features" \
"SELECT fs_create_training_set('ride_training', 'ride_requests', ARRAY['ride_model']);
SELECT * FROM ride_training ORDER BY request_id;"
step "No future value leaked: each row's conv_rate is the driver's latest value at or before the request" \
"SELECT t.request_id, t.event_timestamp AS requested_at,
       (SELECT max(h.event_timestamp) FROM driver_hourly_stats h
        WHERE h.driver_id = t.driver_id AND h.event_timestamp <= t.event_timestamp) AS value_as_of,
       t.conv_rate AS training_value,
       (SELECT h.conv_rate FROM driver_hourly_stats h WHERE h.driver_id = t.driver_id
        AND h.event_timestamp > t.event_timestamp ORDER BY h.event_timestamp LIMIT 1) AS next_value_not_used
FROM ride_training t ORDER BY request_id;
SELECT count(*) FILTER (WHERE h.event_timestamp > t.event_timestamp) AS rows_with_future_values
FROM ride_training t JOIN driver_hourly_stats h
  ON h.driver_id = t.driver_id AND h.conv_rate = t.conv_rate AND h.acc_rate IS NOT DISTINCT FROM t.acc_rate;
SELECT target, features, view_versions, row_count FROM fs_training_sets;"

step "Materialize: the latest row of every entity into the online store (cache + durable table)" \
"SELECT fs_materialize('driver_stats', now() - interval '3 days', now());
SELECT fs_materialize('customer_profile', now() - interval '3 days', now());"
step "Serve: latest features of an entity, as jsonb" \
"SELECT fs_online('driver:1001');
SELECT fs_online(fs_entity('customer', 'c2'), 'customer_profile');"
step "Serve: a model's input vector, and many entities in one call" \
"SELECT fs_online_vector('driver:1001', 'driver_ranker');
SELECT * FROM fs_online_batch(ARRAY['driver:1001', 'driver:1002', 'driver:9999']::fs_entity[], 'driver_ranker');"
step "Serve: per-feature status (present / null / not_found / expired), as Feast's server reports it" \
"SELECT view, feature, value, event_ts, status FROM fs_online_detail('driver:1003');"
step "Schedule incremental materialization with pg_cron (continues from the view's watermark)" \
"SELECT fs_materialize_incremental('customer_profile');
SELECT fs_schedule_materialization('customer_profile', '*/5 * * * *');
SELECT view, schedule, command FROM fs_schedules;"
step "Stream: switch the view to stream mode; committed inserts reach the online store at once" \
"SELECT fs_set_online_mode('driver_stats', 'stream');
INSERT INTO driver_hourly_stats VALUES (1001, now(), now(), 0.999, 0.5, 7), (1002, now(), now(), 1.5, 0.5, 8);
SELECT fs_online('driver:1001', 'driver_stats');"
step "Checks at work: driver 1002's new conv_rate 1.5 fails max 1, so it is quarantined, not served" \
"SELECT fs_online('driver:1002', 'driver_stats');
SELECT view, entity, event_ts, failed_checks FROM fs_quarantine;"
step "Features the store computes: an aggregation view over purchases (windows end just before t)" \
"SELECT fs_register_view('customer_purchases', 'purchases', entity => 'customer', event_time => 'purchased_at',
  aggregations => ARRAY['avg(amount) over ''7 days'' as user_avg_purchase_last_7_days',
                        'count(*) over ''1 day'' as purchases_1d', 'last(category) over ''30 days''']);
SELECT request_id, customer_id, event_timestamp, user_avg_purchase_last_7_days, purchases_1d, last_category_30d
FROM fs_point_in_time_join('ride_requests', ARRAY['customer_purchases:*'])
  AS t(request_id bigint, driver_id bigint, customer_id text, event_timestamp timestamptz,
       user_avg_purchase_last_7_days numeric, purchases_1d bigint, last_category_30d text) ORDER BY request_id;"
step "Training and serving agree: the join at now() equals fs_online, in one snapshot" \
"BEGIN ISOLATION LEVEL REPEATABLE READ;
CREATE TEMP TABLE now_spine AS SELECT 'c' || c AS customer_id, now() AS ts FROM generate_series(1, 3) c;
SELECT t.customer_id, t.user_avg_purchase_last_7_days AS trained,
       fs_online(fs_entity('customer', t.customer_id), 'customer_purchases')
         -> 'customer_purchases' -> 'user_avg_purchase_last_7_days' AS served
FROM fs_point_in_time_join('now_spine', ARRAY['customer_purchases:user_avg_purchase_last_7_days'], 'ts')
  AS t(customer_id text, ts timestamptz, user_avg_purchase_last_7_days numeric) ORDER BY 1;
COMMIT;"
step "Operations: one row per view, the cache, and every materialization run" \
"SELECT view, version, online_mode, rows_online, cache_hit_rate, freshness, watermark, last_outcome, rows_quarantined, schedule FROM fs_stat_views ORDER BY view;
SELECT coalesce(view, 'TOTAL') AS view, entries, hits, misses, read_throughs, evictions, worker_state FROM fs_stat_online;
SELECT view, kind, rows_written, rows_quarantined, outcome FROM fs_runs ORDER BY run_id;"

if [ $KEEP -eq 1 ]; then
  fs_log "cluster left running"
  echo "   connect: ${FS_BINDIR}/psql -h $SOCK -U postgres quickstart"
  echo "   stop:    $( [ "$(id -u)" -eq 0 ] && echo 'runuser -u postgres -- ')${FS_BINDIR}/pg_ctl -D $DATA stop"
else
  fs_log "done; stopping the cluster and removing $W"
fi
