/**
 * The one error handler of the API: every error a route or a hook raises becomes
 * `{error, code, message, details?}` with the right status -- DtqErrors as they say, TypeBox
 * validation as 400 with each problem's path, Redis away or full as 503 with Retry-After, other
 * framework errors with a code from the one list -- and a 5xx never carries its cause (it is
 * logged instead). What reaches no route at all has the same shape (framing.ts).
 */
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.ts'
import { DtqError, type ErrorCode, ErrorCodes, isRedisFull, isRedisUnavailable } from '../errors.ts'
import { describeValidation } from './schemas.ts'

export function errorHandler(config: Pick<Config, 'maxBodyBytes'>) {
  return (err: FastifyError | DtqError, req: FastifyRequest, reply: FastifyReply): void => {
    let status = 500
    let code = 'INTERNAL'
    let message: string = ErrorCodes.INTERNAL.message
    let details: unknown
    if (err instanceof DtqError) {
      status = err.status
      code = err.code
      message = err.message
      details = err.details
    } else if ((err as FastifyError).validation) {
      status = 400
      code = 'VALIDATION'
      const described = describeValidation(
        (err as FastifyError).validation ?? [],
        (err as FastifyError).validationContext ?? 'request',
      )
      message = described.message
      details = described.details
    } else if (isRedisFull(err)) {
      // Redis at maxmemory refuses new work (the enqueue functions are not allow-oom); work in
      // flight goes on, retention frees memory, and the retry after a while succeeds.
      status = 503
      code = 'REDIS_OUT_OF_MEMORY'
      message = ErrorCodes.REDIS_OUT_OF_MEMORY.message
      reply.header('retry-after', '5')
    } else if (isRedisUnavailable(err)) {
      status = 503
      code = 'REDIS_UNAVAILABLE'
      message = ErrorCodes.REDIS_UNAVAILABLE.message
      reply.header('retry-after', '1')
    } else if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413
      code = 'PAYLOAD_TOO_LARGE'
      message = `the body is larger than ${config.maxBodyBytes} bytes`
    } else if ((err as FastifyError).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      status = 415
      code = 'UNSUPPORTED_MEDIA_TYPE'
      message = 'send application/json'
    } else if (
      typeof (err as FastifyError).statusCode === 'number' &&
      (err as FastifyError).statusCode! < 500
    ) {
      // Another framework or plugin error: its status, with a code from the one list.
      status = (err as FastifyError).statusCode!
      code = CODE_OF_STATUS[status] ?? 'BAD_REQUEST'
      message = err.message
    }
    if (status === 429 && (err as unknown as { retryAfter?: string }).retryAfter) {
      reply.header('retry-after', (err as unknown as { retryAfter: string }).retryAfter)
    }
    // Every 503 is temporary (Redis away or full, replicas behind, a draining process): say when.
    if (status === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', '1')
    if (status >= 500 && status !== 503) req.log.error({ err }, 'request failed')
    const reason = STATUS_CODES[status] ?? 'Error'
    reply
      .code(status)
      .send(
        details === undefined ? { error: reason, code, message } : { error: reason, code, message, details },
      )
  }
}

/** The code of a framework error by its status (its own codes, FST_ERR_*, are not the API's). */
const CODE_OF_STATUS: Readonly<Record<number, ErrorCode>> = {
  404: 'NOT_FOUND',
  408: 'REQUEST_TIMEOUT',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  431: 'HEADERS_TOO_LARGE',
}
