/**
 * The HTTP edge: what a request must be before any route sees it, and the answers given where
 * no route runs -- all in the API's one error shape, `{error, code, message}`.
 *
 * - Framing: a single-value header sent twice is a 400 (Node keeps the first Host or
 *   Authorization, a proxy in front may act on the last); a body in a content coding the API does
 *   not decode is a 415 (it would otherwise be read as if it were plain JSON).
 * - Client errors that Node raises before Fastify has a request (a malformed request line or
 *   header, headers over Node's limit, a request that does not arrive whole in time): written to
 *   the socket, which then closes.
 * - What the router refuses (a bad percent-encoding, a path parameter over MAX_PARAM_LENGTH).
 */
import { maxHeaderSize, STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { DtqError, type ErrorCode } from '../errors.ts'

/**
 * The longest path parameter the router takes: the longest id a route carries (a worker id, 200;
 * job ids are at most 128). Longer ones are a 414.
 */
export const MAX_PARAM_LENGTH = 200

/** Headers a request carries at most once. */
const SINGLE = new Set(['host', 'authorization', 'content-type', 'content-length', 'content-encoding'])

export function errorBody(status: number, code: ErrorCode, message: string) {
  return { error: STATUS_CODES[status] ?? 'Error', code, message }
}

/** Throws a 400 for a repeated single-value header, a 415 for a body in a content coding. */
export function checkFraming(req: FastifyRequest): void {
  const raw = req.raw.rawHeaders
  const seen = new Set<string>()
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    if (!SINGLE.has(name)) continue
    if (seen.has(name)) throw new DtqError('BAD_REQUEST', `the ${name} header is sent more than once`)
    seen.add(name)
  }
  const coding = req.headers['content-encoding']
  if (coding !== undefined && coding.trim().toLowerCase() !== 'identity') {
    throw new DtqError(
      'UNSUPPORTED_MEDIA_TYPE',
      `content-encoding ${coding} is not supported: send the body unencoded`,
    )
  }
}

/** Fastify's `clientErrorHandler`: Node's parse errors and timeouts, answered on the socket. */
export function clientErrorHandler(headers: Readonly<Record<string, string>>) {
  return (err: Error & { code?: string }, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    const [status, code, message]: [number, ErrorCode, string] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'REQUEST_TIMEOUT', 'the request did not arrive whole in time']
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'HEADERS_TOO_LARGE', `the request headers are larger than ${maxHeaderSize} bytes`]
          : [400, 'BAD_REQUEST', `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'})`]
    const body = JSON.stringify(errorBody(status, code, message))
    // As Node does: nothing is written once a response to this socket has begun.
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage
    if (socket.writable && !inFlight?.headersSent) {
      const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`)
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${lines.join('')}content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      )
    }
    socket.destroy(err)
  }
}

/** Fastify's `frameworkErrors`: a URL the router cannot route. */
export function frameworkErrors(headers: Readonly<Record<string, string>>) {
  return (err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void => {
    const [status, code, message]: [number, ErrorCode, string] =
      err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? [414, 'URI_TOO_LONG', `a path segment is longer than ${MAX_PARAM_LENGTH} characters`]
        : err.code === 'FST_ERR_BAD_URL'
          ? [400, 'BAD_REQUEST', 'the URL is not valid (a malformed percent-encoding)']
          : [500, 'INTERNAL', 'internal error']
    reply
      .code(status)
      .headers(headers)
      .send(errorBody(status, code, message))
  }
}
