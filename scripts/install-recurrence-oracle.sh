#!/usr/bin/env bash
# Installs the oracle the recurrence differential test (test/recurrence/) compares against:
# python-dateutil for Debian's /usr/bin/python3, from the Debian/Ubuntu archive. Does nothing when
# it is already importable.
set -euo pipefail

have_all() {
  /usr/bin/python3 -c 'import dateutil.rrule, zoneinfo'
} >/dev/null 2>&1

if have_all; then exit 0; fi

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then exec sudo -- "$0" "$@"; fi
  echo "Installing python3-dateutil needs root (apt-get)." >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "apt-get not found: install python3 and python3-dateutil by hand." >&2
  exit 1
fi

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-dateutil >/dev/null

have_all || {
  echo "python3-dateutil is installed, but /usr/bin/python3 cannot import dateutil.rrule." >&2
  exit 1
}
echo "python3-dateutil is installed."
