// Hours of steady load: enqueue at a moderate rate while consoles read. Watch memory and lag.
//   k6 run -e BASE_URL=… -e RATE=100 -e DURATION=4h scripts/k6/soak.js

import { textSummary } from 'https://jslib.k6.io/k6-summary/0.1.0/index.js'
import { check, sleep } from 'k6'
import http from 'k6/http'
import { BASE_URL, headers, jobBody, num } from './lib.js'

export const options = {
  scenarios: {
    producers: {
      executor: 'constant-arrival-rate',
      rate: num('RATE', 100),
      timeUnit: '1s',
      duration: __ENV.DURATION || '1h',
      preAllocatedVUs: 50,
      maxVUs: 500,
      exec: 'produce',
    },
    consoles: {
      executor: 'constant-vus',
      vus: num('CONSOLES', 5),
      duration: __ENV.DURATION || '1h',
      exec: 'read',
    },
  },
  thresholds: { http_req_failed: ['rate<0.001'], 'http_req_duration{name:create}': ['p(99)<250'] },
}

export function produce() {
  const r = http.post(`${BASE_URL}/jobs`, jobBody(__ENV.TASK_TYPE || 'synthetic'), {
    headers: headers(),
    tags: { name: 'create' },
  })
  check(r, { created: (res) => res.status === 201 })
}

export function read() {
  const r = http.get(`${BASE_URL}/stats`, { headers: headers(), tags: { name: 'stats' } })
  check(r, { stats: (res) => res.status === 200 })
  sleep(5)
}

export function handleSummary(data) {
  return {
    stdout: textSummary(data, { indent: ' ', enableColors: true }),
    'k6-soak-summary.json': JSON.stringify(data),
  }
}
