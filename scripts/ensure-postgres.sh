#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 for the test suites: starts the machine's
# cluster when it is stopped, and installs Debian's package when there is none.
set -euo pipefail

ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

if command -v pg_isready >/dev/null && ready; then exit 0; fi

if ! command -v pg_ctlcluster >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL is not installed and this user cannot install it; set SCHED_TEST_DATABASE_URL." >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 30); do
  if ready; then break; fi
  sleep 1
done
ready || { echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }

# The suites connect as postgres without a password, as on these machines; make that so if it is not.
hba=$(su postgres -c "psql -tAc 'show hba_file'" 2>/dev/null || true)
if [ -n "$hba" ] && ! psql -h 127.0.0.1 -U postgres -c 'select 1' >/dev/null 2>&1; then
  sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  su postgres -c "psql -tAc 'select pg_reload_conf()'" >/dev/null
fi
