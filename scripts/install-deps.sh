#!/usr/bin/env bash
# Installs, idempotently, what building and testing feature_store needs (Debian bookworm, PostgreSQL 15).
# Only asks apt when something is missing, so a second run is instant and works offline.
set -euo pipefail

PKGS=(postgresql-15 postgresql-server-dev-15 postgresql-15-cron libipc-run-perl build-essential sqlsmith
      python3-psycopg python3-pandas python3-yaml python3-pytest)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Do not let the Debian packages create and start a default cluster: tests use their own temp clusters.
if [ ! -e /etc/postgresql-common/createcluster.conf ] || ! grep -q '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf; then
  $SUDO mkdir -p /etc/postgresql-common
  echo 'create_main_cluster = false' | $SUDO tee -a /etc/postgresql-common/createcluster.conf >/dev/null
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
