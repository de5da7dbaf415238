// The read traffic of open consoles: each virtual user is one console refreshing its pages.
//   k6 run -e BASE_URL=… -e CONSOLES=50 scripts/k6/console.js

import { textSummary } from 'https://jslib.k6.io/k6-summary/0.1.0/index.js'
import { check, group, sleep } from 'k6'
import http from 'k6/http'
import { BASE_URL, headers, num } from './lib.js'

export const options = {
  scenarios: {
    consoles: { executor: 'constant-vus', vus: num('CONSOLES', 20), duration: __ENV.DURATION || '1m' },
  },
  thresholds: {
    http_req_failed: ['rate<0.001'],
    'http_req_duration{page:dashboard}': ['p(95)<200'],
    'http_req_duration{page:jobs}': ['p(95)<200'],
  },
}

export default function () {
  const h = { headers: headers() }
  group('dashboard', () => {
    const r = http.get(`${BASE_URL}/stats`, { ...h, tags: { page: 'dashboard' } })
    check(r, { stats: (res) => res.status === 200 })
  })
  group('jobs', () => {
    const r = http.get(`${BASE_URL}/jobs?limit=50`, { ...h, tags: { page: 'jobs' } })
    check(r, { jobs: (res) => res.status === 200 })
    const id = r.json('items.0.id')
    if (id) http.get(`${BASE_URL}/jobs/${id}`, { ...h, tags: { page: 'job' } })
  })
  group('dlq', () => {
    http.get(`${BASE_URL}/dlq?limit=100`, { ...h, tags: { page: 'dlq' } })
  })
  group('workers', () => {
    http.get(`${BASE_URL}/workers`, { ...h, tags: { page: 'workers' } })
    http.get(`${BASE_URL}/queues`, { ...h, tags: { page: 'queues' } })
  })
  sleep(num('THINK_S', 2))
}

export function handleSummary(data) {
  return {
    stdout: textSummary(data, { indent: ' ', enableColors: true }),
    'k6-console-summary.json': JSON.stringify(data),
  }
}
