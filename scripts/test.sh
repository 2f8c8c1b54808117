#!/usr/bin/env bash
# The project's test command (README "Run the tests"): installs what the
# tests need when it is missing (services, Chromium, toolchains, npm
# packages), builds the guest components from source, then runs every
# test in the workspace — twice for the end-to-end suite, once per store.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== test services (redis-server, postgresql, chromium)"
bash scripts/install-services.sh
if [ -x scripts/build-guests.sh ]; then
  echo "== building guest components"
  bash scripts/build-guests.sh
fi
# The JS client's test dependency (playwright-core, which drives Debian's
# Chromium), pinned by clients/js/package-lock.json.
if [ ! -d clients/js/node_modules/playwright-core ]; then
  echo "== npm ci (clients/js)"
  npm ci --prefix clients/js --no-audit --no-fund
fi
echo "== cargo test"
cargo test --workspace --locked
# The same end-to-end suite with resources on PostgreSQL (one real server,
# a fresh database per test): both stores must behave alike.
echo "== cargo test, store on PostgreSQL"
SB_TEST_STORE=postgres cargo test --locked -p integration-tests --test all
