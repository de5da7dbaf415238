/**
 * Who the client is. Behind proxies the socket's peer is the nearest proxy, and every proxy that
 * appends to X-Forwarded-For adds the address it saw: only the entries the trusted proxies added
 * are facts; anything to their left is whatever the client sent. TRUST_PROXY names the proxies in
 * front (their number or their addresses), and the client is the first entry, counted from the
 * right, that they did not add. The rate limit then counts per client network (see rateLimitKey).
 */
import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import type { FastifyServerOptions } from 'fastify'

/** Fastify's trustProxy option for a TRUST_PROXY value (config.ts has validated it). */
export function trustProxy(v: string): FastifyServerOptions['trustProxy'] {
  if (v === 'false' || v === '0' || v === '') return false
  if (v === 'true') return true
  if (/^\d+$/.test(v)) {
    // Hop i is the socket's peer (0) or the i-th X-Forwarded-For entry from the right. Fastify 5
    // takes a bare number as "trust nothing", so the count is given as the function it means.
    const hops = Number(v)
    return (_address: string, hop: number) => hop < hops
  }
  return v.split(',').map((s) => s.trim())
}

/**
 * The rate limit's key for a client address, hashed (an address reaches Redis only that way).
 * An IPv6 client counts by its /56: one subscriber's network holds 2^72 addresses, so per-address
 * keys would let it rotate past any limit and write a key per address. An IPv4 address mapped into
 * IPv6 counts as itself, and a port some proxies append to the address is dropped.
 */
export function rateLimitKey(ip: string): string {
  return createHash('sha256').update(clientNetwork(ip)).digest('base64url').slice(0, 22)
}

/** The address (IPv4) or the /56 network (IPv6) a rate limit counts a client by. */
export function clientNetwork(ip: string): string {
  let a = ip.trim()
  const withPort = /^\[([^\]]+)\]:\d+$/.exec(a) ?? /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(a)
  if (withPort) a = withPort[1]!
  const family = isIP(a)
  if (family !== 6) return a
  const g = ipv6Groups(a)
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return [g[6]! >> 8, g[6]! & 255, g[7]! >> 8, g[7]! & 255].join('.')
  }
  return `${g[0]!.toString(16)}:${g[1]!.toString(16)}:${g[2]!.toString(16)}:${(g[3]! & 0xff00).toString(16)}::/56`
}

/** The eight 16-bit groups of a valid IPv6 address (isIP said so). */
function ipv6Groups(address: string): number[] {
  let s = address.split('%')[0]!
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s)
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number]
    s = `${s.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = '', tail] = s.split('::')
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const zeros = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0')
  return [...h, ...zeros, ...t].map((x) => Number.parseInt(x, 16))
}
