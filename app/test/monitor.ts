/**
 * MONITOR on a plain socket, for the tests (helpers.ts re-exports it) and the benches
 * (scripts/bench/idle-fleet.ts): no vitest in here.
 */
import { createConnection } from 'node:net'

/**
 * A MONITOR of a Redis at `url` on a plain socket. ioredis's monitor() sets its "monitoring"
 * status in a promise callback after MONITOR's OK, so a busy server's first lines, arriving in
 * the same read as the OK, are taken as replies to no command ("Command queue state error").
 * `onCall(args, source)` gets each command's arguments as strings and the client's address.
 */
export async function monitorRedis(
  url: string,
  onCall: (args: string[], source: string) => void,
): Promise<{ close(): void }> {
  const { hostname, port } = new URL(url)
  const sock = createConnection({ host: hostname, port: Number(port) })
  await new Promise<void>((ok, fail) => {
    sock.once('connect', ok)
    sock.once('error', fail)
  })
  let buf = ''
  let started: () => void = () => {}
  const ready = new Promise<void>((r) => (started = r))
  sock.setEncoding('utf8')
  sock.on('data', (chunk: string) => {
    buf += chunk
    let nl = buf.indexOf('\r\n')
    while (nl >= 0) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 2)
      nl = buf.indexOf('\r\n')
      if (line === '+OK') started()
      else if (line.startsWith('+')) {
        // +<time> [<db> <source>] "arg" "arg" ... (quotes and backslashes escaped)
        const source = /^\+\S+ \[\d+ ([^\]]+)\]/.exec(line)?.[1] ?? ''
        const args = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1'))
        onCall(args, source)
      }
    }
  })
  sock.write('MONITOR\r\n')
  await ready
  return { close: () => sock.destroy() }
}
