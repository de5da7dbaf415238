/**
 * Redis connections, in the three shapes a deployment can have (ADR 0017): one server
 * (REDIS_URL), a Redis Cluster (REDIS_CLUSTER_NODES: seed nodes; the client follows the slot map
 * through resharding and failovers), or a primary watched by Sentinel (REDIS_SENTINELS: the
 * client asks the sentinels for the primary and follows a failover). Everything above this module
 * holds a `RedisClient` and does not care which.
 *
 * Commands fail fast when Redis is away (no offline queue, a command timeout) so callers answer
 * 503 or retry on their own schedule instead of hanging; the client reconnects forever in the
 * background.
 */
import { Cluster, type ClusterOptions, Command, Redis, type RedisOptions } from 'ioredis'
import type { Config } from '../config.ts'
import { isRedisUnreachable } from '../errors.ts'
import { redisCommandSpans } from '../tracing/index.ts'

/** A connection to the deployment's Redis: one server (standalone or Sentinel's primary), or a Cluster. */
export type RedisClient = Redis | Cluster

/** Where Redis is: what the settings say, as data (it crosses to the lease thread). */
export type RedisTarget =
  | { kind: 'standalone'; url: string }
  | { kind: 'cluster'; nodes: string[] }
  | { kind: 'sentinel'; sentinels: string[]; master: string; url: string }

/** The target the settings name: a Cluster, Sentinel, or REDIS_URL's server. */
export function redisTarget(
  cfg: Pick<Config, 'redisUrl'> &
    Partial<Pick<Config, 'redisClusterNodes' | 'redisSentinels' | 'redisSentinelMaster'>>,
): RedisTarget {
  if (cfg.redisClusterNodes?.length) return { kind: 'cluster', nodes: [...cfg.redisClusterNodes] }
  if (cfg.redisSentinels?.length) {
    return {
      kind: 'sentinel',
      sentinels: [...cfg.redisSentinels],
      master: cfg.redisSentinelMaster ?? 'mymaster',
      url: cfg.redisUrl,
    }
  }
  return { kind: 'standalone', url: cfg.redisUrl }
}

/** A target from a URL (tests, the bench): a standalone server. */
export function standalone(url: string): RedisTarget {
  return { kind: 'standalone', url }
}

/** What a target is, for logs: addresses without credentials. */
export function describeTarget(t: RedisTarget): string {
  const bare = (a: string) => {
    const n = parseNode(a)
    return `${n.host}:${n.port}`
  }
  if (t.kind === 'cluster') return `Redis Cluster (seeds ${t.nodes.map(bare).join(', ')})`
  if (t.kind === 'sentinel')
    return `Sentinel primary "${t.master}" (sentinels ${t.sentinels.map(bare).join(', ')})`
  return t.url.replace(/\/\/[^/@]*@/, '//***@')
}

interface NodeAddress {
  host: string
  port: number
  username?: string
  password?: string
  tls: boolean
}

/** `host:port` or `redis[s]://[user:password@]host:port` (config.ts has checked the form). */
function parseNode(a: string): NodeAddress {
  if (!/^rediss?:\/\//.test(a)) {
    const i = a.lastIndexOf(':')
    return { host: a.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(a.slice(i + 1)), tls: false }
  }
  const u = new URL(a)
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: Number(u.port || 6379),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === 'rediss:',
  }
}

export interface ConnectionOptions {
  /** Where Redis is; a string is a standalone server's URL. */
  target: RedisTarget | string
  commandTimeoutMs: number
  /** For blocking reads: the timeout must outlast the BLOCK time. */
  blocking?: boolean
  name?: string
}

/** Not for blocking reads; not with TRACE_REDIS, whose spans need each command sent in its caller's context. */
const autoPipelining = (opts: ConnectionOptions) => !opts.blocking && !redisCommandSpans

/** What every connection to a Redis server gets, whatever the shape of the deployment. */
function serverOptions(opts: ConnectionOptions): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: Math.max(opts.commandTimeoutMs, 1000),
    enableAutoPipelining: autoPipelining(opts),
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
    lazyConnect: true,
    connectionName: opts.name,
  }
}

/** A connection to `opts.target` (a standalone server's URL gives a plain Redis). */
export function createRedis(opts: ConnectionOptions & { target: string }): Redis
export function createRedis(opts: ConnectionOptions): RedisClient
export function createRedis(opts: ConnectionOptions): RedisClient {
  const t = typeof opts.target === 'string' ? standalone(opts.target) : opts.target
  if (t.kind === 'cluster') return createCluster(t.nodes, opts)
  let redis: Redis
  if (t.kind === 'sentinel') {
    const data = new URL(t.url)
    const first = parseNode(t.sentinels[0]!)
    redis = new Redis({
      ...serverOptions(opts),
      sentinels: t.sentinels.map((s) => {
        const n = parseNode(s)
        return { host: n.host, port: n.port }
      }),
      name: t.master,
      sentinelUsername: first.username,
      sentinelPassword: first.password,
      sentinelTLS: first.tls ? {} : undefined,
      username: data.username ? decodeURIComponent(data.username) : undefined,
      password: data.password ? decodeURIComponent(data.password) : undefined,
      // rediss:// in REDIS_URL: TLS to the primary the sentinels name.
      enableTLSForSentinelMode: data.protocol === 'rediss:',
      tls: data.protocol === 'rediss:' ? {} : undefined,
      // The primary's address comes from the sentinels: after a failover the client reconnects
      // to the one they elected as soon as they announce it (+switch-master).
      failoverDetector: true,
      // A connection that finds the old primary demoted (READONLY) reconnects through them.
      role: 'master',
      sentinelRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    })
  } else redis = new Redis(t.url, serverOptions(opts))
  guard(redis, opts.commandTimeoutMs)
  reviveUnaskedEnd(redis)
  return redis
}

/**
 * A Redis Cluster client. It learns the slot map from the seeds and follows MOVED / ASK
 * redirections, failovers (a replica promoted: the map is refreshed) and resharding. Each node
 * connection gets the same guards as a standalone one (dropped on a command timeout, a stalled
 * handshake restarted). Commands on many slots at once go autopipelined, one round trip per node.
 */
function createCluster(nodes: string[], opts: ConnectionOptions): Cluster {
  const seeds = nodes.map(parseNode)
  const first = seeds[0]!
  const server = serverOptions(opts)
  const options: ClusterOptions = {
    enableOfflineQueue: false,
    enableAutoPipelining: autoPipelining(opts),
    lazyConnect: true,
    scaleReads: 'master',
    maxRedirections: 16,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: Math.max(opts.commandTimeoutMs, 1000),
    slotsRefreshInterval: 5000,
    clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    // Managed services (ElastiCache) hand out certificates for the names they announce: the
    // addresses are used as given rather than resolved first.
    dnsLookup: (address, callback) => callback(null, address),
    redisOptions: {
      connectTimeout: server.connectTimeout,
      commandTimeout: server.commandTimeout,
      maxRetriesPerRequest: server.maxRetriesPerRequest,
      connectionName: server.connectionName,
      username: first.username,
      password: first.password,
      tls: first.tls ? {} : undefined,
    },
  }
  const cluster = new Cluster(
    seeds.map((s) => ({ host: s.host, port: s.port })),
    options,
  )
  cluster.on('error', () => {})
  cluster.on('+node', (node: Redis) => guard(node, opts.commandTimeoutMs))
  return cluster
}

/** The guards every server connection gets (errors surface on the commands, not as events). */
function guard(redis: Redis, commandTimeoutMs: number): void {
  // Errors surface on the commands; the connection-level event would otherwise crash the process.
  redis.on('error', () => {})
  dropLinkOnTimeout(redis)
  restartStalledHandshake(redis, Math.max(commandTimeoutMs, 1000))
}

/** True for a Cluster client. */
export function isCluster(redis: RedisClient): redis is Cluster {
  return (redis as Cluster).isCluster === true
}

/**
 * The primaries: each master of a Cluster (connected on demand), or the one server. For what
 * must run on every primary -- loading the function library, the durability check, SCAN, INFO.
 */
export function primaries(redis: RedisClient): Redis[] {
  return isCluster(redis) ? redis.nodes('master') : [redis]
}

/** A node's address, for messages. */
export function nodeName(redis: Redis): string {
  return `${redis.options.host}:${redis.options.port}`
}

/**
 * Sends a command whose key the client cannot find in its arguments (XGROUP, XINFO: container
 * commands) to the node that owns `key`'s slot, following redirections like any other command.
 * On one server it is a plain call.
 */
export function callOnKey(redis: RedisClient, key: string, name: string, ...args: Array<string | number>) {
  if (!isCluster(redis)) return redis.call(name, ...args)
  const command = new Command(name, args, { replyEncoding: 'utf8' })
  command.getKeys = () => [key]
  return redis.sendCommand(command)
}

/**
 * Every key matching `pattern`, a batch at a time: SCAN on each primary (a Cluster's keys are
 * spread over its masters).
 */
export async function scanKeys(
  redis: RedisClient,
  pattern: string,
  onBatch: (keys: string[]) => Promise<void> | void,
  count = 1000,
): Promise<void> {
  for (const node of primaries(redis)) {
    let cursor = '0'
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count)
      cursor = next
      if (keys.length) await onBatch(keys)
    } while (cursor !== '0')
  }
}

/**
 * Drops the link and reconnects. The client ends its socket gracefully, which on a dead link
 * (FIN never acknowledged) can take long: the socket is destroyed if it has not closed soon.
 */
function dropLink(redis: Redis): void {
  const stream = redis.stream
  redis.disconnect(true)
  setTimeout(() => {
    if (stream && !stream.destroyed) stream.destroy()
  }, 250).unref()
}

/**
 * ioredis ends a client for good ('end': every command fails "Connection is closed.", no more
 * reconnecting) when its connector is disconnected while a connection attempt is under way: the
 * attempt rejects and the client gives up. Its sentinel failover detector does exactly that on
 * +switch-master, which arrives while the client is reconnecting after the primary died -- found
 * by the chaos suite: the API and both workers ended together at the promotion and answered 503
 * until the test gave up. A client that ends without having been closed on purpose (quit, or
 * disconnect without reconnecting) is connected again, with backoff; on a primary of a Cluster
 * the Cluster client manages its node connections itself, so this is for the other clients.
 */
export function reviveUnaskedEnd(redis: Redis): void {
  let closing = false
  let attempts = 0
  const quit = redis.quit.bind(redis)
  const disconnect = redis.disconnect.bind(redis)
  redis.quit = ((...args: Parameters<Redis['quit']>) => {
    closing = true
    return quit(...args)
  }) as Redis['quit']
  redis.disconnect = (reconnect = false) => {
    if (!reconnect) closing = true
    disconnect(reconnect)
  }
  redis.on('ready', () => {
    attempts = 0
  })
  redis.on('end', () => {
    if (closing) return
    const ms = Math.min(50 * 2 ** Math.min(attempts++, 5), 2000)
    setTimeout(() => {
      if (!closing && redis.status === 'end') redis.connect().catch(() => {})
    }, ms).unref()
  })
}

/**
 * A connection whose socket opened but whose handshake (CLIENT SETNAME, the ready check) is
 * never answered -- made during a network black hole -- would wait for ever: the client has no
 * timeout there. Found by the chaos suite (a worker stuck after the link healed). If the client
 * is not ready `ms` after its socket connected, the attempt is dropped and a fresh one made.
 */
function restartStalledHandshake(redis: Redis, ms: number): void {
  let timer: NodeJS.Timeout | undefined
  redis.on('connect', () => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      if (redis.status !== 'ready' && redis.status !== 'end') dropLink(redis)
    }, ms)
    timer.unref()
  })
  redis.on('ready', () => clearTimeout(timer))
  redis.on('end', () => clearTimeout(timer))
}

/**
 * A command that timed out may still be answered later, and RESP matches replies to commands
 * by order: on a link that stalled and healed, every later reply would go to the wrong
 * command. So a timeout condemns the connection: it is dropped and a fresh one is made.
 */
function dropLinkOnTimeout(redis: Redis): void {
  const send = redis.sendCommand.bind(redis)
  let dropping = false
  redis.sendCommand = ((command: { promise: Promise<unknown> }, ...rest: unknown[]) => {
    const result = (send as (...a: unknown[]) => unknown)(command, ...rest)
    command.promise?.catch((err: Error) => {
      if (err?.message === 'Command timed out' && !dropping && redis.status === 'ready') {
        dropping = true
        dropLink(redis)
        setTimeout(() => {
          dropping = false
        }, 100)
      }
    })
    return result
  }) as typeof redis.sendCommand
}

/** Connects and waits until the client is ready, retrying until `timeoutMs`. */
export async function connectRedis(redis: RedisClient, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return
  const deadline = Date.now() + timeoutMs
  if (redis.status === 'wait') {
    redis.connect().catch(() => {})
  }
  const ready = () => redis.status === 'ready'
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`Redis not reachable after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/**
 * Runs `step` until it succeeds, retrying while Redis is unavailable (with backoff, up to
 * `timeoutMs`); other errors are thrown at once. For start-up steps: a process that starts
 * during a Redis outage waits it out instead of exiting.
 */
export async function whenRedisAvailable<T>(
  step: () => Promise<T>,
  timeoutMs = 60_000,
  onRetry?: (err: Error) => void,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (let attempt = 0; ; attempt++) {
    try {
      return await step()
    } catch (err) {
      if (!isRedisUnreachable(err) || Date.now() > deadline) throw err
      onRetry?.(err as Error)
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** Math.min(attempt, 5), 2000)))
    }
  }
}
