#!/usr/bin/env bash
# Installs the CalDAV servers the provider tests run against, from the Debian/Ubuntu archive:
# Radicale, Xandikos, and DAViCal with what it needs under PHP's built-in server (php-cli, php-pgsql,
# and the PostgreSQL server binaries for a private cluster; no Apache). The tests start their own
# server processes on free loopback ports, so nothing installed here is left running or enabled.
set -euo pipefail

have_all() {
  command -v radicale && command -v xandikos && command -v php && command -v psql &&
    [ -f /usr/share/davical/htdocs/caldav.php ] && [ -d /etc/davical ] &&
    compgen -G '/usr/lib/postgresql/*/bin/initdb' && php -m | grep -qix pgsql
} >/dev/null 2>&1

if have_all; then exit 0; fi

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then exec sudo -- "$0" "$@"; fi
  echo "Installing the CalDAV servers needs root (apt-get)." >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "apt-get not found: install radicale, xandikos, davical, php-cli, php-pgsql and postgresql by hand." >&2
  exit 1
fi

services=(radicale xandikos postgresql)
declare -A had
for service in "${services[@]}"; do
  had[$service]=$(dpkg-query -W -f='${Status}' "$service" 2>/dev/null | grep -c 'install ok installed' || true)
done

# Maintainer scripts must not start anything while installing (postgresql's main cluster, radicale).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi

apt-get update -qq

# DAViCal depends on the `php` metapackage, which pulls Apache's PHP module unless another PHP SAPI is
# being installed; the CGI one is small and starts nothing.
php_version=$(apt-cache depends php-cli 2>/dev/null | sed -n 's/.*Depends: php\([0-9.]*\)-cli$/\1/p' | head -n 1)
extra=()
if [ -n "$php_version" ]; then extra+=("php${php_version}-cgi"); fi

DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  radicale xandikos davical php-cli php-pgsql php-xml postgresql "${extra[@]}" >/dev/null

for service in "${services[@]}"; do
  [ "${had[$service]}" = 0 ] || continue
  if [ -d /run/systemd/system ]; then
    systemctl disable --now "$service" >/dev/null 2>&1 || true
  elif command -v update-rc.d >/dev/null; then
    update-rc.d "$service" disable >/dev/null 2>&1 || true
  fi
done

have_all || {
  echo "The packages are installed, but a CalDAV test server is still missing." >&2
  exit 1
}
echo "radicale, xandikos and davical are installed."
