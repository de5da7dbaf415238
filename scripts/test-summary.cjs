// The test run's last lines: what failed, by name (so the tail of a CI log says which test it
// was), then "N passed, N failed" from the real counts in .tmp/vitest-*.json and
// .tmp/playwright.json. Arguments: checks passed, then the names of the checks that failed.
const fs = require('node:fs')

const [checksPassed, ...failedChecks] = process.argv.slice(2)
let passed = Number(checksPassed)
let failed = failedChecks.length
const names = failedChecks.map((name) => `check: ${name}`)
const firstLine = (messages) =>
  String((messages ?? [])[0] ?? '')
    .split('\n')[0]
    .slice(0, 300)

const files = fs.readdirSync('.tmp').filter((f) => /^vitest-.*\.json$/.test(f))
if (!files.length) {
  failed++
  names.push('vitest: no report was written')
}
for (const f of files) {
  const run = f.replace(/^vitest-|\.json$/g, '')
  const r = JSON.parse(fs.readFileSync(`.tmp/${f}`, 'utf8'))
  passed += r.numPassedTests
  failed += r.numFailedTests + (r.numRuntimeErrorTestSuites || 0)
  if (!r.success && r.numFailedTests === 0 && !r.numRuntimeErrorTestSuites) {
    failed++
    names.push(`vitest ${run}: the run failed outside any test`)
  }
  for (const suite of r.testResults ?? []) {
    const file = String(suite.name).replace(/^.*\/(app|ui|scripts)\//, '$1/')
    const failures = (suite.assertionResults ?? []).filter((t) => t.status === 'failed')
    for (const t of failures)
      names.push(`vitest ${run}: ${file} > ${t.fullName}: ${firstLine(t.failureMessages)}`)
    if (suite.status === 'failed' && !failures.length)
      names.push(
        `vitest ${run}: ${file}: ${String(suite.message ?? '')
          .split('\n')[0]
          .slice(0, 300)}`,
      )
  }
}

if (fs.existsSync('.tmp/playwright.json')) {
  const report = JSON.parse(fs.readFileSync('.tmp/playwright.json', 'utf8'))
  const s = report.stats
  passed += s.expected
  failed += s.unexpected + s.flaky
  if (s.expected + s.unexpected + s.flaky === 0) {
    failed++
    names.push('playwright: no test ran')
  }
  const visit = (suite) => {
    for (const spec of suite.specs ?? [])
      for (const test of spec.tests ?? [])
        if (test.status === 'unexpected' || test.status === 'flaky') {
          const error = (test.results ?? []).map((r) => r.error?.message).find(Boolean)
          names.push(
            `playwright (${test.status}): ${spec.file}:${spec.line} > ${spec.title}: ${firstLine([error])}`,
          )
        }
    for (const child of suite.suites ?? []) visit(child)
  }
  for (const suite of report.suites ?? []) visit(suite)
} else {
  failed++
  names.push('playwright: no report was written')
}

if (names.length) console.log(`what failed:\n${names.map((n) => `  - ${n}`).join('\n')}`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed ? 1 : 0)
