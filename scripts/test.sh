#!/usr/bin/env bash
# Installs what is missing, builds feature_store warning-free, installs it into a private copy of
# PostgreSQL, runs every pg_regress test (temp instance with pg_cron and feature_store preloaded),
# every isolation spec (specs/, a temp instance of its own) and every TAP test, and ends with
# "N passed, N failed". Exit status 0 only if nothing failed.
#   scripts/test.sh                 everything
#   scripts/test.sh --regress-only  pg_regress and isolation only;  --tap-only  TAP only;  TAP=test/t/010_x.pl one file
#   FS_KEEP=1 keeps the work directory for inspection.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN_REGRESS=1 RUN_TAP=1
for a in "$@"; do
  case $a in
    --regress-only) RUN_TAP=0 ;;
    --tap-only) RUN_REGRESS=0 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done

"$FS_ROOT/scripts/install-deps.sh" || { echo "0 passed, 1 failed (install-deps)"; exit 1; }

W=$(fs_workdir fs_test)
mkdir -p "$W/tmp"
export TMPDIR=$W/tmp   # sockets and scratch files of this run stay inside its work directory
fs_copy_tree "$W/src"
fs_stage_pg "$W"
fs_chown_for_pg "$W"
SRC=$W/src
cleanup() { if [ -z "${FS_KEEP:-}" ]; then rm -rf "$W"; else echo "work directory kept: $W"; fi; }
trap cleanup EXIT

passed=0 failed=0
fs_log "building (warnings are errors) and installing into $W/pg"
if ! fs_as_pg_user bash -c "source '$SRC/scripts/lib.sh'; fs_stage_pg '$W'; fs_build_install '$SRC'"; then
  echo "0 passed, 1 failed (build)"
  exit 1
fi

# run_suite LABEL DIFFS MAKE-ARGS...: one pg_regress-style suite through make installcheck; counts
# its "... ok" / "... FAILED" lines (a suite that reports none failed as a whole).
run_suite() {
  local label=$1 diffs=$2 out p f
  shift 2
  fs_log "$label"
  out=$(fs_as_pg_user make -C "$SRC" -s PG_CONFIG="$FS_PG_CONFIG" installcheck TAP_TESTS= "$@" 2>&1)
  echo "$out" | grep -E '^(test |     |ok |not ok |\s*[a-z_0-9]+\s+\.\.\.)|\.\.\. (ok|FAILED|failed)' || echo "$out" | tail -20
  p=$(echo "$out" | grep -cE '\.\.\. ok|^ok ')
  f=$(echo "$out" | grep -cE '\.\.\. FAILED|\.\.\. failed|^not ok ')
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; echo "$out" | tail -20; fi
  if [ -f "$diffs" ]; then cat "$diffs"; fi
  passed=$((passed + p)); failed=$((failed + f))
}

if [ $RUN_REGRESS -eq 1 ] && [ -z "${TAP:-}" ]; then
  # separate runs: a pg_regress failure stops make before the isolation specs would run
  run_suite "pg_regress" "$SRC/regression.diffs" ISOLATION=
  run_suite "isolation specs" "$SRC/output_iso/regression.diffs" REGRESS=
fi

if [ $RUN_TAP -eq 1 ]; then
  for t in ${TAP:-$(cd "$SRC" && ls test/t/*.pl 2>/dev/null)}; do
    fs_log "TAP $t"
    out=$(fs_as_pg_user make -C "$SRC" -s PG_CONFIG="$FS_PG_CONFIG" installcheck REGRESS= ISOLATION= \
          PROVE_TESTS="$t" PROVE_FLAGS="-v -I test/lib" 2>&1)
    rc=$?
    echo "$out" | grep -E '^(ok|not ok) |^# |Result:' | grep -v '^# Subtest' | head -200
    p=$(echo "$out" | grep -cE '^ok ')
    f=$(echo "$out" | grep -cE '^not ok ')
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
      f=1; echo "$out" | tail -30
      for l in "$SRC"/tmp_check/log/*; do [ -f "$l" ] && { echo "--- $l"; tail -40 "$l"; }; done
    fi
    passed=$((passed + p)); failed=$((failed + f))
  done
fi

# Python client (python/): pytest against a throwaway cluster of the staged PostgreSQL, counted like
# the TAP tests. Runs with the TAP tests (PYTEST=0 skips it, PYTEST=1 forces it: build and Python
# tests only with `TAP=' ' PYTEST=1 scripts/test.sh --tap-only`).
if [ "${PYTEST:-auto}" = 1 ] || { [ "${PYTEST:-auto}" = auto ] && [ $RUN_TAP -eq 1 ] && [ -z "${TAP:-}" ]; }; then
  fs_log "pytest python/tests"
  PYD=$W/pytest; mkdir -p "$PYD"; fs_chown_for_pg "$PYD"
  fs_as_pg_user "$FS_BINDIR/initdb" -D "$PYD/data" -A trust -U postgres >/dev/null
  printf '%s\n' "listen_addresses = ''" "unix_socket_directories = '$PYD'" "port = 5432" \
    "shared_preload_libraries = 'feature_store'" "fsync = off" | fs_as_pg_user tee -a "$PYD/data/postgresql.conf" >/dev/null
  if fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$PYD/data" -l "$PYD/server.log" -w start >/dev/null; then
    out=$(cd "$SRC/python" && fs_as_pg_user env -u PGOPTIONS -u PGDATABASE -u PGSERVICE PYTHONDONTWRITEBYTECODE=1 \
          FS_TEST_DSN="host=$PYD port=5432 user=postgres dbname=postgres" PATH="$FS_BINDIR:/usr/bin:/bin" \
          /usr/bin/python3 -m pytest -p no:cacheprovider -v --tb=short tests 2>&1)
    fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$PYD/data" -m fast -w stop >/dev/null
  else
    out="pytest cluster did not start"; cat "$PYD/server.log"
  fi
  echo "$out" | grep -E ' (PASSED|FAILED|ERROR)|^(FAILED|ERROR) |^E  ' | head -300
  summary=$(echo "$out" | grep -E '^=+ .*( passed| failed| error).* in [0-9.]+s' | tail -1)
  p=$(echo "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || true)
  f=$(echo "$summary" | grep -oE '[0-9]+ (failed|errors?)' | awk '{s += $1} END {print s + 0}')
  p=${p:-0}; f=${f:-0}
  if [ -z "$summary" ] || { [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; }; then f=1; echo "$out" | tail -30; fi
  passed=$((passed + p)); failed=$((failed + f))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
