#!/usr/bin/env bash
# The whole test suite: installs what it needs (pnpm, dependencies, redis-server), checks
# formatting/lint and types, runs every package's tests against private redis-servers, and
# ends with one line "N passed, N failed" from the real counts.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

install_deps || { echo "0 passed, 1 failed"; exit 1; }
ensure_redis_server || { echo "0 passed, 1 failed"; exit 1; }
# Browser tests: Debian's nginx and Chromium (never a browser download).
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_install nginx-light || say "nginx is missing: the browser tests will fail"
command -v chromium >/dev/null 2>&1 || apt_install chromium || say "chromium is missing: the browser tests will fail"
# The monitoring kit's tests (app/test/prometheus.test.ts): Debian's promtool and prometheus.
command -v promtool >/dev/null 2>&1 || apt_install prometheus || say "prometheus is missing: the monitoring tests will fail"
# The history's tests (app/test/archiver.test.ts, chaos/archiver.test.ts): the machine's PostgreSQL
# on 127.0.0.1:5432 (a database of their own per run) and Debian's server binaries for a private one.
[ -x /usr/lib/postgresql/15/bin/initdb ] || apt_install postgresql-15 || say "postgresql-15 is missing: the history tests will fail"
export PATH="$PATH:/usr/sbin"
export PATH="$PWD/node_modules/.bin:$PATH"   # Node 22 from the `node` package

mkdir -p .tmp
rm -f .tmp/vitest-*.json
checks_passed=0
failed_checks=()
run_check() {
  local name=$1; shift
  say "$name"
  if "$@"; then checks_passed=$((checks_passed + 1)); else failed_checks+=("$name"); say "$name FAILED"; fi
}

run_check "lint (biome)" biome check .
run_check "typecheck" pnpm_cmd -r --silent typecheck
run_check "console build" pnpm_cmd --filter @dtq/ui --silent build
run_check "benchmark smoke run (DTQ vs BullMQ and bee-queue, features on, tiny sizes)" bash -c 'cd scripts/bench && node bench.ts --smoke'
run_check "flows benchmark smoke run (tiny sizes)" bash -c 'cd scripts/bench && node flows.ts --smoke'
run_check "flow control benchmark smoke run (plain fetch A/B, limits vs plain; tiny sizes)" bash -c 'cd scripts/bench && node limits.ts --smoke'
run_check "history archiver benchmark smoke run (engine with archiving off / on, archiver jobs/s; tiny sizes)" bash -c 'cd scripts/bench && node archive.ts --smoke'
run_check "analytics benchmark smoke run (each /analytics query over 20k seeded rows)" bash -c 'cd scripts/bench && node analytics.ts --smoke'
run_check "search benchmark smoke run (10k archived rows: payload, free text, type + time, contains; export)" bash -c 'cd scripts/bench && node search.ts --smoke'

say "tests (vitest)"
(cd app && CI=true ./node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json=../.tmp/vitest-app.json)
vitest_status=$?

# The engine, worker and API suites again on the other topologies (test/topology.ts starts them
# from the same redis-server binary: 3 primaries + 3 replicas; a primary, a replica, 3 sentinels).
# `pnpm test:cluster` runs everything on both.
TOPOLOGY_SET="test/partitions.test.ts test/scripts.test.ts test/producer.test.ts test/reads.test.ts test/worker.test.ts test/processor.test.ts test/api.test.ts test/api-events.test.ts test/redrive.test.ts test/schedules.test.ts test/api-schedules.test.ts test/flows.test.ts test/api-flows.test.ts test/depends-on.test.ts test/dedup.test.ts test/deadlines.test.ts test/api-flow-control.test.ts test/limits.test.ts test/api-limits.test.ts test/day2.test.ts test/api-day2.test.ts test/cli-day2.test.ts test/replay.test.ts test/archiver.test.ts"
for topology in cluster sentinel; do
  say "tests on a Redis ${topology} (vitest, DTQ_TEST_REDIS=${topology})"
  # shellcheck disable=SC2086
  (cd app && CI=true DTQ_TEST_REDIS=$topology ./node_modules/.bin/vitest run $TOPOLOGY_SET --reporter=dot --reporter=json --outputFile.json=../.tmp/vitest-$topology.json) || vitest_status=1
done

say "browser tests (playwright + chromium + nginx)"
rm -f .tmp/playwright.json
(cd ui && CI=true ./node_modules/.bin/playwright test)
e2e_status=$?

node scripts/test-summary.cjs "$checks_passed" "${failed_checks[@]}"
summary_status=$?
[ $vitest_status -eq 0 ] && [ $e2e_status -eq 0 ] && [ $summary_status -eq 0 ]
