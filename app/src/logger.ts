/** Process logger (pino, JSON lines). Tokens and payloads are never logged. */
import { pino } from 'pino'

export function createLogger(level: string, name: string) {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    redact: {
      paths: ['token', '*.token', 'headers.authorization', 'req.headers.authorization'],
      censor: '[redacted]',
    },
  })
}
