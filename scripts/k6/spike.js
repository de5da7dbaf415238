// A sudden spike: from a trickle to SPIKE_RATE req/s and back. Admission control (429) and the
// rate limit may answer during the spike; 5xx may not.
//   k6 run -e BASE_URL=… -e SPIKE_RATE=3000 scripts/k6/spike.js

import { textSummary } from 'https://jslib.k6.io/k6-summary/0.1.0/index.js'
import { check } from 'k6'
import http from 'k6/http'
import { Rate } from 'k6/metrics'
import { BASE_URL, headers, jobBody, num } from './lib.js'

const serverErrors = new Rate('server_errors')

export const options = {
  scenarios: {
    spike: {
      executor: 'ramping-arrival-rate',
      startRate: num('BASE_RATE', 50),
      timeUnit: '1s',
      preAllocatedVUs: 200,
      maxVUs: 3000,
      stages: [
        { target: num('BASE_RATE', 50), duration: '30s' },
        { target: num('SPIKE_RATE', 2000), duration: '10s' },
        { target: num('SPIKE_RATE', 2000), duration: '1m' },
        { target: num('BASE_RATE', 50), duration: '10s' },
        { target: num('BASE_RATE', 50), duration: '30s' },
      ],
    },
  },
  thresholds: { server_errors: ['rate<0.001'], checks: ['rate>0.95'] },
}

export default function () {
  const r = http.post(`${BASE_URL}/jobs`, jobBody(), { headers: headers(), tags: { name: 'create' } })
  serverErrors.add(r.status >= 500)
  check(r, { 'accepted or told to back off': (res) => res.status === 201 || res.status === 429 })
}

export function handleSummary(data) {
  return {
    stdout: textSummary(data, { indent: ' ', enableColors: true }),
    'k6-spike-summary.json': JSON.stringify(data),
  }
}
