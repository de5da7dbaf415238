/**
 * The load generator of `pnpm bench`'s (e), in a process of its own so the API under test has
 * its event loop to itself (as behind a real load balancer) and its CPU per request can be read
 * from its own process. Usage: node http-load.ts <url> <seconds> [authorization header value].
 * Prints one JSON line: {rps, p99, requests, non2xx}.
 */
import autocannon from 'autocannon'

const [url, seconds, authorization] = process.argv.slice(2)
const r = await autocannon({
  url: url!,
  method: 'POST',
  connections: 50,
  duration: Number(seconds),
  headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
  body: JSON.stringify({ task_type: 'noop', payload: { n: 1 } }),
})
process.stdout.write(
  `${JSON.stringify({ rps: r.requests.average, p99: r.latency.p99, requests: r.requests.total, non2xx: r.non2xx })}\n`,
)
