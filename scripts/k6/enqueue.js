// POST /jobs at a constant arrival rate. Thresholds on p95/p99 latency and the error rate.
//   k6 run -e BASE_URL=http://localhost:8000 -e API_TOKEN=… -e RATE=500 -e DURATION=2m scripts/k6/enqueue.js

import { textSummary } from 'https://jslib.k6.io/k6-summary/0.1.0/index.js'
import { check } from 'k6'
import http from 'k6/http'
import { BASE_URL, headers, jobBody, num } from './lib.js'

export const options = {
  scenarios: {
    enqueue: {
      executor: 'constant-arrival-rate',
      rate: num('RATE', 200),
      timeUnit: '1s',
      duration: __ENV.DURATION || '1m',
      preAllocatedVUs: num('VUS', 50),
      maxVUs: num('MAX_VUS', 500),
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.001'],
    'http_req_duration{name:create}': [`p(95)<${num('P95_MS', 50)}`, `p(99)<${num('P99_MS', 150)}`],
    checks: ['rate>0.999'],
  },
}

export default function () {
  const r = http.post(`${BASE_URL}/jobs`, jobBody(), { headers: headers(), tags: { name: 'create' } })
  check(r, { 'created (201)': (res) => res.status === 201, 'has an id': (res) => !!res.json('id') })
}

export function handleSummary(data) {
  return {
    stdout: textSummary(data, { indent: ' ', enableColors: true }),
    'k6-enqueue-summary.json': JSON.stringify(data),
  }
}
