/**
 * Process logger (pino, JSON lines). Tokens and payloads are never logged. With tracing on, a
 * line written inside a span carries its trace_id and span_id (and job_id inside a job's run):
 * tracing/index.ts hands its fields in through setLogContext.
 */
import { pino } from 'pino'

let contextFields: (() => object) | null = null

/** Fields every log line gets from the context it is written in (null: none). */
export function setLogContext(fields: (() => object) | null): void {
  contextFields = fields
}

/**
 * pino's mixin for DTQ's loggers (Fastify's too): the context fields, or nothing. A new object
 * each time: pino merges the line's own fields into it.
 */
export function logMixin(): object {
  return contextFields ? contextFields() : {}
}

export function createLogger(level: string, name: string) {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    mixin: logMixin,
    redact: {
      paths: ['token', '*.token', 'headers.authorization', 'req.headers.authorization'],
      censor: '[redacted]',
    },
  })
}
