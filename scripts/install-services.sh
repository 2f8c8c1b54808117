#!/usr/bin/env bash
# Installs the real engines the tests start on loopback ports in temp
# directories (never as system services): redis-server (cluster tests)
# and PostgreSQL (the shared store's tests and bench), plus Debian's
# Chromium, which drives the client SDK's and the console's browser tests.
# Idempotent: skipped when already there. Needs root (or sudo) for apt-get.
#
# usage: scripts/install-services.sh
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

report() {
  echo "services: redis-server $(redis-server --version | awk '{print $3}'), $(ls -d /usr/lib/postgresql/*/bin/postgres | tail -1), $(chromium --version 2>/dev/null | head -1)"
}
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
  report
  exit 0
fi
echo "services: apt-get install ${missing[*]}"
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# The packages' own daemons are not needed (tests start their own); a
# policy-rc.d that refuses keeps apt from starting them where it would.
policy=/usr/sbin/policy-rc.d
created_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
  as_root chmod +x "$policy"
  created_policy=true
fi
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if $created_policy; then as_root rm -f "$policy"; fi
report
