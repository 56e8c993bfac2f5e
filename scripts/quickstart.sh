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
W=$(fs_workdir fs_quickstart)
fs_copy_tree "$W/src"
fs_stage_pg "$W"
fs_chown_for_pg "$W"
fs_log "building feature_store and installing it into a private copy of PostgreSQL ($W/pg)"
fs_as_pg_user bash -c "source '$W/src/scripts/lib.sh'; fs_stage_pg '$W'; fs_build_install '$W/src'"

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
step "A feature service: the features one model consumes, in order" \
"SELECT fs_register_service('ride_model', ARRAY['driver_stats:conv_rate', 'driver_stats:acc_rate',
       'driver_stats:avg_daily_trips', 'customer_profile:current_balance']);"
step "Re-registering a changed view creates version 2; version 1 stays readable as driver_stats@1" \
"SELECT fs_register_view('driver_stats', 'driver_hourly_stats', entity => 'driver',
       event_time => 'event_timestamp', created_time => 'created', ttl => '2 hours');"
step "The catalog: views" "SELECT name, version, is_latest, source, entity, ttl, online_mode, n_features FROM fs_views ORDER BY name, version;"
step "The catalog: features" "SELECT reference, type, checks FROM fs_features ORDER BY view, version, position;"
step "The catalog: services and entities" "SELECT name, version, features FROM fs_services; SELECT entity, join_keys, key_types FROM fs_entities;"

if [ $KEEP -eq 1 ]; then
  fs_log "cluster left running"
  echo "   connect: ${FS_BINDIR}/psql -h $SOCK -U postgres quickstart"
  echo "   stop:    $( [ "$(id -u)" -eq 0 ] && echo 'runuser -u postgres -- ')${FS_BINDIR}/pg_ctl -D $DATA stop"
else
  fs_log "done; stopping the cluster and removing $W"
fi
