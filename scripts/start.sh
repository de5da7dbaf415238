#!/usr/bin/env bash
# Quick start: installs dependencies and runs DTQ for a laptop (`dtq dev`). Redis: REDIS_URL if
# set, else one on 127.0.0.1:6379, else a private redis-server with AOF under .data/redis
# (installed with apt when missing and possible).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

install_deps
say "building the console"
pnpm_cmd --filter @dtq/ui --silent build >/dev/null
if [ -z "${REDIS_URL:-}" ] && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  ensure_redis_server || exit 1
fi
exec ./node_modules/.bin/node app/src/cli/main.ts dev "$@"
