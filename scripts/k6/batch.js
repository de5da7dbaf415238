// POST /jobs/batch: BATCH jobs per request at a constant request rate.
//   k6 run -e BASE_URL=… -e BATCH=100 -e RATE=20 scripts/k6/batch.js

import { textSummary } from 'https://jslib.k6.io/k6-summary/0.1.0/index.js'
import { check } from 'k6'
import http from 'k6/http'
import { Counter } from 'k6/metrics'
import { BASE_URL, headers, num } from './lib.js'

const jobsCreated = new Counter('jobs_created')
const BATCH = num('BATCH', 100)

export const options = {
  scenarios: {
    batch: {
      executor: 'constant-arrival-rate',
      rate: num('RATE', 20),
      timeUnit: '1s',
      duration: __ENV.DURATION || '1m',
      preAllocatedVUs: 20,
      maxVUs: 200,
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.001'],
    'http_req_duration{name:batch}': [`p(95)<${num('P95_MS', 250)}`],
    checks: ['rate>0.999'],
  },
}

export default function () {
  const jobs = Array.from({ length: BATCH }, (_, i) => ({
    task_type: __ENV.TASK_TYPE || 'echo',
    payload: { i },
  }))
  const r = http.post(`${BASE_URL}/jobs/batch`, JSON.stringify({ jobs }), {
    headers: headers(),
    tags: { name: 'batch' },
  })
  const ok = check(r, {
    200: (res) => res.status === 200,
    'nothing rejected': (res) => res.json('rejected') === 0,
  })
  if (ok) jobsCreated.add(r.json('created'))
}

export function handleSummary(data) {
  return {
    stdout: textSummary(data, { indent: ' ', enableColors: true }),
    'k6-batch-summary.json': JSON.stringify(data),
  }
}
