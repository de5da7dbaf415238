/**
 * Settings: the only module that reads process.env. Parsed and validated once at start,
 * frozen, then passed down. A bad setting stops the process with one message naming every
 * bad variable.
 */
import { isIP } from 'node:net'

type Kind = 'string' | 'int' | 'number' | 'list' | 'url' | 'nodes' | 'enum' | 'bool' | 'tokens' | 'proxies'

interface Spec {
  env: string
  key: string
  kind: Kind
  default: string
  min?: number
  max?: number
  values?: readonly string[]
  pattern?: RegExp
  /** What a value that fails `pattern` should be, for the message (default: a name). */
  format?: string
  doc: string
}

/** Letters, digits, _ . - -- and not `.` or `..`, which a URL path cannot carry (dot segments). */
export const NAME_PATTERN = /^(?!\.\.?$)[A-Za-z0-9_.-]{1,64}$/
/** auto, *, a host name (optionally *.-prefixed) or a bracketed IPv6 literal. */
const HOST_PATTERN = /^(auto|\*|(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])$/
/** What proxy-addr accepts by name, besides addresses and CIDRs. */
const PROXY_NAMES = ['loopback', 'linklocal', 'uniquelocal']

/** Search and export (ADR 0029). */
const SEARCH_SETTINGS = [
  {
    env: 'SEARCH_LIVE_SCAN',
    key: 'searchLiveScan',
    kind: 'int',
    default: '10000',
    min: 100,
    max: 1_000_000,
    doc: 'a search reads at most this many live jobs from Redis (its answer says when the cap cut the live part)',
  },
  {
    env: 'SEARCH_DEFAULT_DAYS',
    key: 'searchDefaultDays',
    kind: 'int',
    default: '7',
    min: 1,
    max: 3650,
    doc: 'a search of the history without `from` covers this many days back (its answer says so)',
  },
  {
    env: 'SEARCH_EXPORT_MAX',
    key: 'searchExportMax',
    kind: 'int',
    default: '1000000',
    min: 1000,
    max: 100_000_000,
    doc: 'an export streams at most this many rows (a larger `limit` is a 400)',
  },
  {
    env: 'SEARCH_TIMEOUT_MS',
    key: 'searchTimeoutMs',
    kind: 'int',
    default: '10000',
    min: 100,
    max: 600_000,
    doc: 'one history query of a search stops after this long (the search then says the history was unavailable and why)',
  },
] as const satisfies readonly Spec[]

/**
 * Every setting, its default and one line of meaning: the one description of DTQ's settings.
 * The `Config` type is derived from it, every source of settings (the environment, overrides
 * from code) is checked against it, and .env.example is checked against it by a test.
 */
export const SETTINGS = [
  {
    env: 'REDIS_URL',
    key: 'redisUrl',
    kind: 'url',
    default: 'redis://127.0.0.1:6379',
    doc: "Redis to use (redis:// or rediss://, with user:password@ if it needs them); with REDIS_SENTINELS its credentials and scheme are the data nodes' (its host is ignored)",
  },
  {
    env: 'REDIS_CLUSTER_NODES',
    key: 'redisClusterNodes',
    kind: 'nodes',
    default: '',
    doc: "Redis Cluster: comma-separated seed nodes (redis[s]://[user:password@]host:port or host:port; one is enough, e.g. ElastiCache's configuration endpoint). Credentials and TLS of the first apply to every node. Replaces REDIS_URL",
  },
  {
    env: 'REDIS_SENTINELS',
    key: 'redisSentinels',
    kind: 'nodes',
    default: '',
    doc: 'Redis Sentinel: comma-separated sentinels (host:port, or redis[s]://[:password@]host:port); the primary is found through them (REDIS_SENTINEL_MASTER)',
  },
  {
    env: 'REDIS_SENTINEL_MASTER',
    key: 'redisSentinelMaster',
    kind: 'string',
    default: 'mymaster',
    pattern: NAME_PATTERN,
    doc: 'with REDIS_SENTINELS: the name the sentinels monitor the primary under',
  },
  {
    env: 'ENQUEUE_WAIT_REPLICAS',
    key: 'enqueueWaitReplicas',
    kind: 'int',
    default: '0',
    min: 0,
    max: 16,
    doc: "an enqueue is acknowledged only once this many replicas of its primary have it (WAIT); 0: on the primary's word (a failover may lose the last acknowledged jobs)",
  },
  {
    env: 'ENQUEUE_WAIT_TIMEOUT_MS',
    key: 'enqueueWaitTimeoutMs',
    kind: 'int',
    default: '1000',
    min: 1,
    max: 60_000,
    doc: 'with ENQUEUE_WAIT_REPLICAS: how long an enqueue waits for its replicas before it answers 503 (REPLICATION_TIMEOUT: the jobs may exist; retry with the same idempotency key)',
  },
  {
    env: 'KEY_PREFIX',
    key: 'keyPrefix',
    kind: 'string',
    default: 'dtq',
    pattern: NAME_PATTERN,
    doc: 'prefix of every Redis key DTQ writes',
  },
  { env: 'PORT', key: 'port', kind: 'int', default: '8000', min: 0, max: 65535, doc: 'HTTP port of the API' },
  {
    env: 'ENVIRONMENT',
    key: 'environment',
    kind: 'enum',
    default: 'development',
    values: ['development', 'production'],
    doc: 'development or production (production hides dev endpoints and requires tokens)',
  },
  {
    env: 'FRONTEND_ORIGIN',
    key: 'frontendOrigin',
    kind: 'string',
    default: 'http://localhost:5173',
    doc: 'origin allowed by CORS (the console in development)',
  },
  {
    env: 'API_TOKENS',
    key: 'apiTokens',
    kind: 'tokens',
    default: '',
    doc: 'comma-separated token:role[:name] entries (role read|write|admin; tokens of 16+ characters; the name, [A-Za-z0-9_.@-]{1,64}, is who the audit log says acted: default <role>-<n>, n its place in the list)',
  },
  {
    env: 'AUTH_DISABLED',
    key: 'authDisabled',
    kind: 'bool',
    default: 'false',
    doc: 'true runs the API without tokens even in production (never expose it then)',
  },
  {
    env: 'TRUST_PROXY',
    key: 'trustProxy',
    kind: 'proxies',
    default: 'false',
    doc: 'the proxies in front whose X-Forwarded-For entries are believed: false, their number (1 behind nginx or an ALB, 2 on Render), or their addresses/CIDRs; true (all) only in development',
  },
  {
    env: 'ALLOWED_HOSTS',
    key: 'allowedHosts',
    kind: 'list',
    default: 'auto',
    pattern: HOST_PATTERN,
    doc: 'Host names the API answers to (421 otherwise): auto = localhost names only when it runs without tokens in development, any otherwise; * = any; or comma-separated names (*.example.com allowed) added to the localhost names',
  },
  {
    env: 'RATE_LIMIT_PER_MIN',
    key: 'rateLimitPerMin',
    kind: 'int',
    default: '6000',
    min: 0,
    max: 10_000_000,
    doc: 'API requests per client IP per minute, shared by all instances (0: off)',
  },
  {
    env: 'MAX_BODY_BYTES',
    key: 'maxBodyBytes',
    kind: 'int',
    default: '5242880',
    min: 1024,
    max: 1_073_741_824,
    doc: 'largest accepted request body (keep nginx client_max_body_size in step)',
  },
  {
    env: 'QUEUE_MAX_DEPTH',
    key: 'queueMaxDepth',
    kind: 'int',
    default: '0',
    min: 0,
    max: 1_000_000_000,
    doc: 'admission control: POST /jobs answers 429 while a queue holds this many waiting jobs (0: no limit)',
  },
  {
    env: 'BATCH_MAX_JOBS',
    key: 'batchMaxJobs',
    kind: 'int',
    default: '1000',
    min: 1,
    max: 100_000,
    doc: 'most jobs in one POST /jobs/batch',
  },
  {
    env: 'FLOW_MAX_NODES',
    key: 'flowMaxNodes',
    kind: 'int',
    default: '1000',
    min: 1,
    max: 10_000,
    doc: 'most nodes in one flow (POST /flows, Queue.addFlow): a bigger graph is a 400',
  },
  {
    env: 'FLOW_CREATE_GRACE_MS',
    key: 'flowCreateGraceMs',
    kind: 'int',
    default: '30000',
    min: 1000,
    max: 86_400_000,
    doc: 'how long a flow may stay `creating` before the maintenance leader completes it from its record (its creator crashed part-way)',
  },
  {
    env: 'API_DRAIN_DELAY_MS',
    key: 'apiDrainDelayMs',
    kind: 'int',
    default: '5000',
    min: 0,
    max: 600_000,
    doc: 'on SIGTERM the API reports not-ready and keeps serving this long before closing',
  },
  {
    env: 'REDIS_DURABILITY',
    key: 'redisDurability',
    kind: 'enum',
    default: 'auto',
    values: ['auto', 'enforce', 'warn', 'off'],
    doc: 'check Redis keeps what it acknowledged (AOF on, noeviction): enforce refuses to start, warn logs; auto = enforce in production',
  },
  {
    env: 'DTQ_UNSAFE',
    key: 'unsafe',
    kind: 'list',
    default: 'none',
    values: [
      'none',
      'no-lease-renewal',
      'no-fencing',
      'no-handback',
      'no-delayed-gating',
      'no-leader',
      'no-clock-sync',
      'no-oom-flags',
      'no-archive-hold',
      'no-created-building-index',
      'no-memory-relief',
      'no-schedule-cas',
      'flow-early-release',
      'no-alert-lease',
      'no-shutdown-bound',
    ],
    doc: 'TESTS ONLY (refused with ENVIRONMENT=production): switch safety mechanisms off for negative controls (none|no-lease-renewal|no-fencing|no-handback|no-delayed-gating|no-leader|no-clock-sync|no-oom-flags|no-archive-hold|no-created-building-index|no-memory-relief|no-schedule-cas|flow-early-release|no-alert-lease|no-shutdown-bound)',
  },
  {
    env: 'DTQ_TEST_CLOCK_SKEW_MS',
    key: 'testClockSkewMs',
    kind: 'int',
    default: '0',
    min: -315_360_000_000,
    max: 315_360_000_000,
    doc: "TESTS ONLY: run as if this machine's clock were off by this many ms (DTQ measures Redis's clock and corrects it)",
  },
  {
    env: 'SSE_HEARTBEAT_MS',
    key: 'sseHeartbeatMs',
    kind: 'int',
    default: '15000',
    min: 100,
    max: 600_000,
    doc: 'interval of keep-alive comments on /events',
  },
  {
    env: 'SSE_MAX_CONNECTIONS',
    key: 'sseMaxConnections',
    kind: 'int',
    default: '1000',
    min: 1,
    max: 1_000_000,
    doc: 'most open /events streams per API instance (503 beyond)',
  },
  {
    env: 'SSE_MAX_CONNECTIONS_PER_CLIENT',
    key: 'sseMaxConnectionsPerClient',
    kind: 'int',
    default: '100',
    min: 1,
    max: 1_000_000,
    doc: 'most open /events streams per token on one instance, per client address when auth is off (429 beyond)',
  },
  {
    env: 'SSE_REPLAY_MAX_EVENTS',
    key: 'sseReplayMaxEvents',
    kind: 'int',
    default: '1000',
    min: 0,
    max: 1_000_000,
    doc: 'most events replayed to an /events client resuming with Last-Event-ID; a larger gap gets a reload event',
  },
  {
    env: 'SSE_MAX_LAG_EVENTS',
    key: 'sseMaxLagEvents',
    kind: 'int',
    default: '5000',
    min: 10,
    max: 10_000_000,
    doc: 'live events held for an /events client that is not keeping up; one further behind is disconnected',
  },
  {
    env: 'SSE_STALL_TIMEOUT_MS',
    key: 'sseStallTimeoutMs',
    kind: 'int',
    default: '30000',
    min: 100,
    max: 3_600_000,
    doc: 'an /events client whose socket stays full this long (it reads nothing) is disconnected',
  },
  {
    env: 'LOG_LEVEL',
    key: 'logLevel',
    kind: 'enum',
    default: 'info',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    doc: 'pino log level',
  },
  {
    env: 'TRACE_REDIS',
    key: 'traceRedis',
    kind: 'bool',
    default: 'false',
    doc: 'with tracing on (OTEL_* below, ADR 0023): also a span per Redis command made inside a traced enqueue or handler (turns auto-pipelining off: for debugging)',
  },
  {
    env: 'DEFAULT_QUEUE',
    key: 'defaultQueue',
    kind: 'string',
    default: 'default',
    pattern: NAME_PATTERN,
    doc: 'queue used when a job names none',
  },
  {
    env: 'MAX_RETRIES',
    key: 'maxRetries',
    kind: 'int',
    default: '3',
    min: 0,
    max: 1000,
    doc: 'retries after the first attempt before a job goes to the DLQ',
  },
  {
    env: 'INITIAL_BACKOFF_MS',
    key: 'initialBackoffMs',
    kind: 'int',
    default: '1000',
    min: 0,
    max: 86_400_000,
    doc: 'delay before the first retry',
  },
  {
    env: 'BACKOFF_MULTIPLIER',
    key: 'backoffMultiplier',
    kind: 'number',
    default: '2',
    min: 1,
    max: 100,
    doc: 'growth of the delay per retry',
  },
  {
    env: 'MAX_BACKOFF_MS',
    key: 'maxBackoffMs',
    kind: 'int',
    default: '3600000',
    min: 0,
    max: 604_800_000,
    doc: 'cap on the retry delay',
  },
  {
    env: 'JOB_TIMEOUT_MS',
    key: 'jobTimeoutMs',
    kind: 'int',
    default: '0',
    min: 0,
    max: 604_800_000,
    doc: 'default run-time limit of a job (0: none); per job timeout_ms overrides',
  },
  {
    env: 'WORKER_CONCURRENCY',
    key: 'workerConcurrency',
    kind: 'int',
    default: '10',
    min: 1,
    max: 10_000,
    doc: 'jobs one worker process runs at once',
  },
  {
    env: 'WORKER_QUEUES',
    key: 'workerQueues',
    kind: 'list',
    default: 'default',
    pattern: NAME_PATTERN,
    doc: 'comma-separated queues a worker serves',
  },
  {
    env: 'LEASE_MS',
    key: 'leaseMs',
    kind: 'int',
    default: '5000',
    min: 50,
    max: 3_600_000,
    doc: 'how often a worker renews the lease of each running job',
  },
  {
    env: 'CLAIM_IDLE_MS',
    key: 'claimIdleMs',
    kind: 'int',
    default: '30000',
    min: 200,
    max: 86_400_000,
    doc: 'a job whose lease was not renewed for this long is redelivered (crash detection window)',
  },
  {
    env: 'MAX_DELIVERIES',
    key: 'maxDeliveries',
    kind: 'int',
    default: '5',
    min: 1,
    max: 1000,
    doc: 'crash redeliveries after which a job is dead-lettered as poison',
  },
  {
    env: 'SHUTDOWN_TIMEOUT_MS',
    key: 'shutdownTimeoutMs',
    kind: 'int',
    default: '30000',
    min: 0,
    max: 3_600_000,
    doc: 'on SIGTERM, time running jobs get to finish before they are handed back',
  },
  {
    env: 'SHUTDOWN_CLEANUP_MS',
    key: 'shutdownCleanupMs',
    kind: 'int',
    default: '5000',
    min: 100,
    max: 600_000,
    doc: 'on SIGTERM, time the rest of the shutdown gets (hand-back, deregistering, closing) after SHUTDOWN_TIMEOUT_MS (+ API_DRAIN_DELAY_MS for the API): past it the process disconnects and exits 1, whatever state Redis is in (invariant 35)',
  },
  {
    env: 'COMPLETED_RETENTION_S',
    key: 'completedRetentionS',
    kind: 'int',
    default: '3600',
    min: 0,
    max: 31_536_000,
    doc: 'how long completed and cancelled jobs are kept',
  },
  {
    env: 'FAILED_RETENTION_S',
    key: 'failedRetentionS',
    kind: 'int',
    default: '604800',
    min: 60,
    max: 31_536_000,
    doc: 'how long dead-lettered jobs are kept',
  },
  {
    env: 'FLOW_RETENTION_S',
    key: 'flowRetentionS',
    kind: 'int',
    default: '604800',
    min: 60,
    max: 31_536_000,
    doc: "how long a flow's record is kept after its last release (or after its latest scheduled root is due)",
  },
  {
    env: 'IDEMPOTENCY_TTL_S',
    key: 'idempotencyTtlS',
    kind: 'int',
    default: '86400',
    min: 1,
    max: 31_536_000,
    doc: 'how long an idempotency key maps to its job',
  },
  {
    env: 'QUEUE_FORGET_S',
    key: 'queueForgetS',
    kind: 'int',
    default: '86400',
    min: 0,
    max: 31_536_000,
    doc: 'a queue that has held nothing this long (and no live worker serves) leaves the registry; 0: never',
  },
  {
    env: 'MAX_QUEUES',
    key: 'maxQueues',
    kind: 'int',
    default: '1000',
    min: 1,
    max: 1_000_000,
    doc: 'most queues the registry holds: adding to, pausing or serving a new queue beyond it is refused (409 QUEUE_LIMIT)',
  },
  {
    env: 'MAX_SNOOZES',
    key: 'maxSnoozes',
    kind: 'int',
    default: '100',
    min: 0,
    max: 1_000_000,
    doc: 'most times a handler may snooze one job (SnoozeJob, ctx.snooze: no attempt used); one more dead-letters it; 0: no limit',
  },
  {
    env: 'MAX_PAYLOAD_BYTES',
    key: 'maxPayloadBytes',
    kind: 'int',
    default: '1048576',
    min: 16,
    max: 67_108_864,
    doc: 'largest accepted payload (and stored result), JSON bytes',
  },
  {
    env: 'AUDIT_MAX_LEN',
    key: 'auditMaxLen',
    kind: 'int',
    default: '100000',
    min: 0,
    max: 10_000_000,
    doc: 'about how many operator actions the audit stream keeps (<prefix>:audit, GET /audit; 0 records none)',
  },
  {
    env: 'EVENTS_MAX_LEN',
    key: 'eventsMaxLen',
    kind: 'int',
    default: '10000',
    min: 100,
    max: 10_000_000,
    doc: 'about how many lifecycle events the events stream of a queue keeps (what an SSE client can resume over)',
  },
  {
    env: 'REDIS_COMMAND_TIMEOUT_MS',
    key: 'redisCommandTimeoutMs',
    kind: 'int',
    default: '2000',
    min: 100,
    max: 60_000,
    doc: 'a Redis command not answered in this time fails (503 in the API)',
  },
  // ---- alerts (ADR 0025; defaults of the built-in rules, the channels) ---------------------
  {
    env: 'ALERTS_ENABLED',
    key: 'alertsEnabled',
    kind: 'bool',
    default: 'true',
    doc: 'whether this process takes part in alerting (evaluates rules and delivers notifications while it holds the alerts lease); one process of the fleet does it at a time',
  },
  {
    env: 'ALERT_EVAL_INTERVAL_MS',
    key: 'alertEvalIntervalMs',
    kind: 'int',
    default: '15000',
    min: 50,
    max: 3_600_000,
    doc: 'how often the alerts leader evaluates the rules',
  },
  {
    env: 'ALERT_REPEAT_MS',
    key: 'alertRepeatMs',
    kind: 'int',
    default: '14400000',
    min: 0,
    max: 604_800_000,
    doc: 'cooldown: a firing alert not acknowledged is notified again this often (a rule may set its own repeat_ms); 0: never repeated',
  },
  {
    env: 'ALERT_DLQ_THRESHOLD',
    key: 'alertDlqThreshold',
    kind: 'int',
    default: '10',
    min: 0,
    max: 1_000_000_000,
    doc: 'built-in rule dlq_depth: a queue with more dead letters than this fires (warning)',
  },
  {
    env: 'ALERT_DLQ_CRITICAL',
    key: 'alertDlqCritical',
    kind: 'int',
    default: '100',
    min: 0,
    max: 1_000_000_000,
    doc: 'built-in rule dlq_critical: a queue with more dead letters than this fires (critical)',
  },
  {
    env: 'ALERT_DLQ_GROWTH',
    key: 'alertDlqGrowth',
    kind: 'int',
    default: '20',
    min: 0,
    max: 1_000_000_000,
    doc: 'built-in rule dlq_growth: a DLQ that grew by more than this within 15 minutes fires',
  },
  {
    env: 'ALERT_FAILURE_RATE',
    key: 'alertFailureRate',
    kind: 'number',
    default: '0.5',
    min: 0,
    max: 1,
    doc: 'built-in rule failure_rate: a task type whose failed attempts over finished attempts in ALERT_FAILURE_WINDOW_MS exceed this ratio fires (at least 5 attempts)',
  },
  {
    env: 'ALERT_FAILURE_WINDOW_MS',
    key: 'alertFailureWindowMs',
    kind: 'int',
    default: '300000',
    min: 1000,
    max: 86_400_000,
    doc: 'the window of the built-in failure_rate rule',
  },
  {
    env: 'ALERT_OLDEST_WAITING_MS',
    key: 'alertOldestWaitingMs',
    kind: 'int',
    default: '300000',
    min: 0,
    max: 31_536_000_000,
    doc: 'built-in rule oldest_waiting: a queue whose oldest job waiting to start is older than this fires (the SLO)',
  },
  {
    env: 'ALERT_NO_WORKER_FOR_MS',
    key: 'alertNoWorkerForMs',
    kind: 'int',
    default: '60000',
    min: 0,
    max: 86_400_000,
    doc: 'built-in rule no_worker: a queue with jobs waiting and no live worker serving it for this long fires (critical)',
  },
  {
    env: 'ALERT_WEBHOOK_URL',
    key: 'alertWebhookUrl',
    kind: 'string',
    default: '',
    pattern: /^(https?:\/\/[^\s]+)?$/,
    format: 'an http:// or https:// URL',
    doc: 'generic webhook channel: alerts are POSTed here as JSON, signed (X-DTQ-Signature, see README); empty: off',
  },
  {
    env: 'ALERT_WEBHOOK_SECRET',
    key: 'alertWebhookSecret',
    kind: 'string',
    default: '',
    doc: "the HMAC-SHA256 key of the webhook's X-DTQ-Signature (empty: the webhook is sent unsigned)",
  },
  {
    env: 'SLACK_WEBHOOK_URL',
    key: 'slackWebhookUrl',
    kind: 'string',
    default: '',
    pattern: /^(https?:\/\/[^\s]+)?$/,
    format: 'an http:// or https:// URL',
    doc: 'Slack channel: an incoming-webhook URL (text + blocks); empty: off',
  },
  {
    env: 'SMTP_HOST',
    key: 'smtpHost',
    kind: 'string',
    default: '',
    pattern: /^[A-Za-z0-9_.:[\]-]*$/,
    format: 'a host name or address',
    doc: 'email channel: the SMTP server (with ALERT_EMAIL); empty: off',
  },
  {
    env: 'SMTP_PORT',
    key: 'smtpPort',
    kind: 'int',
    default: '587',
    min: 1,
    max: 65_535,
    doc: 'the SMTP server port (587 submission with STARTTLS, 465 TLS, 25)',
  },
  {
    env: 'SMTP_USER',
    key: 'smtpUser',
    kind: 'string',
    default: '',
    doc: 'SMTP login (empty: no authentication)',
  },
  {
    env: 'SMTP_PASSWORD',
    key: 'smtpPassword',
    kind: 'string',
    default: '',
    doc: 'SMTP password',
  },
  {
    env: 'SMTP_FROM',
    key: 'smtpFrom',
    kind: 'string',
    default: '',
    doc: 'the From address of alert emails (default: SMTP_USER, else dtq@localhost)',
  },
  {
    env: 'SMTP_SECURITY',
    key: 'smtpSecurity',
    kind: 'enum',
    values: ['starttls', 'tls', 'none'],
    default: 'starttls',
    doc: 'starttls: upgrade when the server offers it and require it when SMTP_USER is set; tls: TLS from the first byte (port 465); none: plain text (a local relay)',
  },
  {
    env: 'ALERT_EMAIL',
    key: 'alertEmail',
    kind: 'string',
    default: '',
    pattern: /^([^\s,@]+@[^\s,@]+)?(\s*,\s*[^\s,@]+@[^\s,@]+)*$/,
    format: 'one email address or several, comma-separated',
    doc: 'where alert emails go: one address or several, comma-separated',
  },
  {
    env: 'ALERT_DIGEST_AT',
    key: 'alertDigestAt',
    kind: 'string',
    default: '',
    pattern: /^(([01]\d|2[0-3]):[0-5]\d)?$/,
    format: 'HH:MM (UTC) or empty',
    doc: 'HH:MM (UTC): send a daily DLQ digest (per queue: dead letters now and dead-lettered since the last digest) at this time; empty: off',
  },
  {
    env: 'ALERT_DELIVERY_TIMEOUT_MS',
    key: 'alertDeliveryTimeoutMs',
    kind: 'int',
    default: '10000',
    min: 100,
    max: 120_000,
    doc: 'one delivery attempt to a channel gives up after this long',
  },
  {
    env: 'ALERT_DELIVERY_ATTEMPTS',
    key: 'alertDeliveryAttempts',
    kind: 'int',
    default: '6',
    min: 1,
    max: 50,
    doc: 'attempts per notification and channel before it is given up (counted as failed)',
  },
  {
    env: 'ALERT_RETRY_BASE_MS',
    key: 'alertRetryBaseMs',
    kind: 'int',
    default: '2000',
    min: 10,
    max: 3_600_000,
    doc: 'the first retry waits this long, each next one twice as long (with jitter, at most 1 h)',
  },
  {
    env: 'DATABASE_URL',
    key: 'databaseUrl',
    kind: 'string',
    default: '',
    pattern: /^$|^postgres(ql)?:\/\/\S+$/,
    doc: 'PostgreSQL for the history (postgres://user:password@host:port/db): `dtq archiver` writes every finished job there (ADR 0027), the API reads analytics from it (ADR 0030); unset = no history, nothing else changes',
  },
  {
    env: 'HISTORY_SCHEMA',
    key: 'historySchema',
    kind: 'string',
    default: 'dtq',
    pattern: /^[a-z_][a-z0-9_]{0,62}$/,
    doc: "the PostgreSQL schema the history's tables live in (created by the archiver's migrations)",
  },
  {
    env: 'HISTORY_RETENTION_DAYS',
    key: 'historyRetentionDays',
    kind: 'int',
    default: '90',
    min: 1,
    max: 3650,
    doc: 'how long the history keeps a job, in days: older daily partitions are dropped whole',
  },
  {
    env: 'ARCHIVER_BATCH',
    key: 'archiverBatch',
    kind: 'int',
    default: '500',
    min: 1,
    max: 5000,
    doc: 'about how many finished jobs an archiver writes to PostgreSQL in one transaction (its memory: this many job records)',
  },
  {
    env: 'ARCHIVER_CLAIM_IDLE_MS',
    key: 'archiverClaimIdleMs',
    kind: 'int',
    default: '60000',
    min: 1000,
    max: 3_600_000,
    doc: "an archiver takes over another's unacknowledged entries idle this long (it died or lost PostgreSQL)",
  },
  ...SEARCH_SETTINGS,
] as const satisfies readonly Spec[]

type AnySpec = (typeof SETTINGS)[number]
type ValueOf<S extends AnySpec> = S['kind'] extends 'int' | 'number'
  ? number
  : S['kind'] extends 'bool'
    ? boolean
    : S['kind'] extends 'list' | 'nodes'
      ? string[]
      : S extends { kind: 'enum'; values: readonly (infer V)[] }
        ? V
        : string

/** The settings, typed from SETTINGS (one source: a setting is added in one place). */
export type Config = { [S in AnySpec as S['key']]: ValueOf<S> }
export type Environment = Config['environment']

export class ConfigError extends Error {
  readonly problems: string[]
  constructor(problems: string[]) {
    super(`invalid settings: ${problems.join('; ')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

/** Parses one setting's text; problems name it by `label` (its variable, or its key in code). */
function parseOne(spec: Spec, raw: string, label = spec.env): { value?: unknown; problem?: string } {
  // A URL's password is never echoed.
  const shown = raw.replace(/\/\/[^/@]*@/, '//***@')
  const bad = (why: string) => ({ problem: `${label}=${JSON.stringify(shown)} ${why}` })
  switch (spec.kind) {
    case 'int':
    case 'number': {
      if (!/^-?\d+(\.\d+)?$/.test(raw.trim())) return bad('is not a number')
      const n = Number(raw)
      if (spec.kind === 'int' && !Number.isInteger(n)) return bad('is not an integer')
      if (spec.min !== undefined && n < spec.min) return bad(`is below ${spec.min}`)
      if (spec.max !== undefined && n > spec.max) return bad(`is above ${spec.max}`)
      return { value: n }
    }
    case 'enum':
      return spec.values?.includes(raw) ? { value: raw } : bad(`is not one of ${spec.values?.join('|')}`)
    case 'bool':
      return raw === 'true' || raw === 'false' ? { value: raw === 'true' } : bad('is not true or false')
    case 'tokens': {
      // Problems name the variable but never echo a token.
      const secret = (why: string) => ({ problem: `${label} ${why}` })
      if (raw.trim() === '') return { value: '' }
      for (const pair of raw.split(',')) {
        const [token, role, name, extra] = pair.trim().split(':')
        if (extra !== undefined || !token || !role)
          return secret('must be token:role[:name] entries separated by commas')
        if (name !== undefined && !/^[A-Za-z0-9_.@-]{1,64}$/.test(name))
          return secret('has a token name that is not 1-64 of A-Za-z0-9_.@-')
        if (!['read', 'write', 'admin'].includes(role))
          return secret(`has an unknown role "${role}" (read|write|admin)`)
        if (token.length < 16 || !/^[\x21-\x7e]+$/.test(token)) {
          return secret('has a token shorter than 16 characters or not printable ASCII')
        }
      }
      return { value: raw }
    }
    case 'proxies': {
      const v = raw.trim()
      if (v === 'true' || v === 'false') return { value: v }
      if (/^\d+$/.test(v))
        return Number(v) > 32 ? bad('is more hops than any real chain') : { value: String(Number(v)) }
      const wrong = v.split(',').filter((s) => !isProxyAddress(s.trim()))
      if (wrong.length)
        return bad(`has ${wrong.join(',')}, not an address, a CIDR or one of ${PROXY_NAMES.join('|')}`)
      return { value: v }
    }
    case 'url': {
      try {
        const u = new URL(raw)
        if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
          return bad('must start with redis:// or rediss://')
        return { value: raw }
      } catch {
        return bad('is not a URL')
      }
    }
    case 'nodes': {
      const items = raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
      // Named by position, never echoed: an entry may carry a password.
      const at = items.flatMap((s, i) => (isNodeAddress(s) ? [] : [i + 1]))
      if (at.length)
        return {
          problem: `${label} entry ${at.join(', ')} is not host:port or redis[s]://[user:password@]host:port`,
        }
      return { value: items }
    }
    case 'list': {
      const items = raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
      if (items.length === 0) return bad('is empty')
      const wrong = items.filter(
        (s) => (spec.pattern && !spec.pattern.test(s)) || (spec.values && !spec.values.includes(s)),
      )
      if (wrong.length) return bad(`has invalid names ${wrong.join(',')} (letters, digits, _ . - only)`)
      return { value: items }
    }
    default:
      if (spec.pattern && !spec.pattern.test(raw))
        // A formatted value (a webhook URL: its path is a secret) is named, never echoed.
        return spec.format
          ? { problem: `${label} must be ${spec.format}` }
          : bad('has characters other than letters, digits, _ . -')
      return { value: raw }
  }
}

/** `host:port`, `[v6]:port` or a redis:// / rediss:// URL with a host and a port. */
function isNodeAddress(s: string): boolean {
  if (!/^rediss?:\/\//.test(s)) {
    const m = /^([A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/.exec(s)
    return !!m && Number(m[2]) >= 1 && Number(m[2]) <= 65535
  }
  try {
    const u = new URL(s)
    return u.hostname !== '' && u.port !== '' && (u.pathname === '' || u.pathname === '/')
  } catch {
    return false
  }
}

function isProxyAddress(s: string): boolean {
  if (PROXY_NAMES.includes(s)) return true
  const [addr = '', bits, extra] = s.split('/')
  const family = isIP(addr)
  if (!family || extra !== undefined) return false
  if (bits === undefined) return true
  return /^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)
}

const SPEC_OF_KEY = new Map<string, Spec>(SETTINGS.map((spec) => [spec.key, spec]))

/**
 * Checks settings given in code (loadConfig's overrides, a Worker's settings) by the same rules
 * as the environment's -- the text a value would have in the environment goes through the same
 * parser -- and the rules between settings. Problems name the keys.
 */
export function checkSettings(values: Partial<Config>): string[] {
  const problems: string[] = []
  for (const [key, value] of Object.entries(values)) {
    const spec = SPEC_OF_KEY.get(key)
    if (!spec) {
      problems.push(`${key} is not a setting`)
      continue
    }
    if (value === undefined) continue
    const text = textOf(spec, value)
    if (text === null) {
      problems.push(
        `${key} must be ${spec.kind === 'list' ? 'a list of strings' : `a ${spec.kind === 'bool' ? 'boolean' : spec.kind === 'int' || spec.kind === 'number' ? 'number' : 'string'}`}`,
      )
      continue
    }
    const { problem } = parseOne(spec, text, key)
    if (problem) problems.push(problem)
  }
  return problems
}

/** A value from code as the text it would have in the environment, or null when its type is wrong. */
function textOf(spec: Spec, value: unknown): string | null {
  switch (spec.kind) {
    case 'int':
    case 'number':
      return typeof value === 'number' ? String(value) : null
    case 'bool':
      return typeof value === 'boolean' ? String(value) : null
    case 'list':
    case 'nodes':
      return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value.join(',') : null
    default:
      return typeof value === 'string' ? value : null
  }
}

/** The rules between settings (those given); `name` spells a setting as its source does. */
function checkTogether(cfg: Partial<Config>, name: (key: keyof Config) => string): string[] {
  const problems: string[] = []
  if (cfg.leaseMs !== undefined && cfg.claimIdleMs !== undefined && cfg.leaseMs * 2 > cfg.claimIdleMs) {
    problems.push(
      `${name('leaseMs')} (${cfg.leaseMs}) must be at most half of ${name('claimIdleMs')} (${cfg.claimIdleMs})`,
    )
  }
  // Behind any proxy that appends to X-Forwarded-For (nginx, an ALB, Cloudflare) its left-most
  // entry is whatever the client sent: trusting all of it lets a client pick its address (and
  // dodge the rate limit). The right value always exists, so production refuses this one.
  if (cfg.environment === 'production' && cfg.trustProxy === 'true') {
    problems.push(
      `${name('trustProxy')}=true believes every X-Forwarded-For entry, so any client picks its own address: with ENVIRONMENT=production set the number of proxies in front (1 behind nginx or an ALB, 2 on Render) or their addresses`,
    )
  }
  // The negative controls switch safety off (fencing, hand-back, the scheduler's gate...): a
  // stray variable in a production environment must not run a fleet without them.
  if (cfg.environment === 'production' && cfg.unsafe?.some((u) => u !== 'none')) {
    problems.push(
      `${name('unsafe')}=${cfg.unsafe.join(',')} switches safety mechanisms off for tests; it is refused with ENVIRONMENT=production`,
    )
  }
  // WAIT holds the connection it shares with every other command: a wait as long as the command
  // timeout times out the enqueues queued behind it and drops the link.
  if (
    (cfg.enqueueWaitReplicas ?? 0) > 0 &&
    cfg.enqueueWaitTimeoutMs !== undefined &&
    cfg.redisCommandTimeoutMs !== undefined &&
    cfg.enqueueWaitTimeoutMs * 2 > cfg.redisCommandTimeoutMs
  ) {
    problems.push(
      `${name('enqueueWaitTimeoutMs')} (${cfg.enqueueWaitTimeoutMs}) must be at most half of ${name('redisCommandTimeoutMs')} (${cfg.redisCommandTimeoutMs}) when ${name('enqueueWaitReplicas')} is set: a WAIT holds the connection other commands wait behind`,
    )
  }
  if (cfg.redisClusterNodes?.length && cfg.redisSentinels?.length) {
    problems.push(
      `${name('redisClusterNodes')} and ${name('redisSentinels')} are both set: a deployment uses a Redis Cluster or a Sentinel-watched primary, not both`,
    )
  }
  return problems
}

/**
 * Checks settings given in code (a Worker's, built by hand rather than by loadConfig): each by
 * its rules, then the rules between them. Problems name the keys.
 */
export function checkConfig(cfg: Partial<Config>): string[] {
  const problems = checkSettings(cfg)
  return problems.length ? problems : checkTogether(cfg, (k) => k)
}

/** Whether the environment sets a setting (rather than leaving it to its default). */
export function isSet(envName: string, env: Record<string, string | undefined> = process.env): boolean {
  const v = env[envName]
  return v !== undefined && v !== ''
}

/**
 * Whether the standard OpenTelemetry variables ask for traces (ADR 0023): an exporter or an OTLP
 * endpoint is named (not `none`, not empty) and the SDK is not disabled. The SDK itself reads
 * the rest of OTEL_* when it starts; with none of them set it is never loaded.
 */
export function tracingRequested(env: Record<string, string | undefined> = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
  if (exporters.length) return !exporters.includes('none')
  return isSet('OTEL_EXPORTER_OTLP_ENDPOINT', env) || isSet('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', env)
}

/**
 * The OTEL_* values DTQ's tracing depends on, checked as DTQ's own settings are (the SDK would
 * only log a diagnostic and export nothing): endpoints are http(s) URLs, the exporter and the
 * protocol are ones the SDK has. Problems name the variables.
 */
export function checkTracingEnv(env: Record<string, string | undefined> = process.env): string[] {
  const problems: string[] = []
  for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']) {
    const v = env[name]
    if (!v) continue
    let ok = false
    try {
      ok = ['http:', 'https:'].includes(new URL(v).protocol)
    } catch {}
    if (!ok) problems.push(`${name} must be an http:// or https:// URL`)
  }
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((x) => x.trim())
  const unknown = exporters.filter((x) => x && !['otlp', 'console', 'zipkin', 'none'].includes(x))
  if (unknown.length)
    problems.push(`OTEL_TRACES_EXPORTER has ${unknown.join(',')}, not otlp|console|zipkin|none`)
  for (const name of ['OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL']) {
    const v = env[name]
    if (v && !['grpc', 'http/protobuf', 'http/json'].includes(v))
      problems.push(`${name} must be grpc, http/protobuf or http/json`)
  }
  return problems
}

/** Whether OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES names the service (else DTQ names it per process). */
export function otelNamesTheService(env: Record<string, string | undefined> = process.env): boolean {
  return (
    isSet('OTEL_SERVICE_NAME', env) || /(^|,)\s*service\.name\s*=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? '')
  )
}

/** The directory relative paths on the command line are taken from (npm's INIT_CWD under `pnpm dtq`). */
export function launchDir(env: Record<string, string | undefined> = process.env): string {
  return env.INIT_CWD ?? process.cwd()
}

/**
 * Parses settings from an env-like record, then applies `overrides` from code -- checked by the
 * same rules -- and the rules between settings; throws ConfigError naming every bad one.
 */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  overrides: Partial<Config> = {},
): Config {
  const problems: string[] = []
  const out: Record<string, unknown> = {}
  for (const spec of SETTINGS) {
    const raw = env[spec.env]
    const { value, problem } = parseOne(spec, raw === undefined || raw === '' ? spec.default : raw)
    if (problem) problems.push(problem)
    out[spec.key] = value
  }
  problems.push(...checkSettings(overrides))
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined))
  const cfg = { ...out, ...defined } as Config
  if (!problems.length) {
    const envName = (k: keyof Config) => (k in defined ? k : SPEC_OF_KEY.get(k)!.env)
    problems.push(...checkTogether(cfg, envName))
  }
  if (problems.length) throw new ConfigError(problems)
  return Object.freeze(cfg)
}
