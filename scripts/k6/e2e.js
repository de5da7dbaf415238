// Enqueue, then follow each job until it is completed: a custom trend for enqueue→completed.
//   k6 run -e BASE_URL=… -e RATE=50 scripts/k6/e2e.js   (needs running workers)

import { textSummary } from 'https://jslib.k6.io/k6-summary/0.1.0/index.js'
import { check, sleep } from 'k6'
import http from 'k6/http'
import { Rate, Trend } from 'k6/metrics'
import { BASE_URL, headers, jobBody, num } from './lib.js'

const e2e = new Trend('job_enqueue_to_completed_ms', true)
const completed = new Rate('job_completed')

export const options = {
  scenarios: {
    e2e: {
      executor: 'constant-arrival-rate',
      rate: num('RATE', 50),
      timeUnit: '1s',
      duration: __ENV.DURATION || '1m',
      preAllocatedVUs: 100,
      maxVUs: 1000,
    },
  },
  thresholds: {
    job_completed: ['rate>0.999'],
    job_enqueue_to_completed_ms: [`p(95)<${num('E2E_P95_MS', 500)}`],
    http_req_failed: ['rate<0.001'],
  },
}

export default function () {
  const start = Date.now()
  const r = http.post(`${BASE_URL}/jobs`, jobBody(), { headers: headers(), tags: { name: 'create' } })
  if (!check(r, { created: (res) => res.status === 201 })) return
  const id = r.json('id')
  const deadline = start + num('TIMEOUT_MS', 30000)
  while (Date.now() < deadline) {
    const s = http.get(`${BASE_URL}/jobs/${id}`, { headers: headers(), tags: { name: 'follow' } })
    const state = s.json('state')
    if (state === 'completed') {
      e2e.add(Date.now() - start)
      completed.add(true)
      return
    }
    if (state === 'failed' || state === 'cancelled') break
    sleep(0.05)
  }
  completed.add(false)
}

export function handleSummary(data) {
  return {
    stdout: textSummary(data, { indent: ' ', enableColors: true }),
    'k6-e2e-summary.json': JSON.stringify(data),
  }
}
