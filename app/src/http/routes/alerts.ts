/**
 * Alerts (docs/decisions/0025): the alerts now, their history, rules, acknowledgements,
 * silences and a test alert through each configured channel. Evaluation and delivery run in
 * the background of every api/worker process (one at a time, under a lease); these routes
 * only read and write what they use.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { configuredChannels, sendTestAlert } from '../../alerts/channels.ts'
import { DtqError } from '../../errors.ts'
import { builtinRules } from '../../queue/alert-rules.ts'
import {
  AckBody,
  AlertParams,
  AlertS,
  AlertsReply,
  HistoryQuery,
  HistoryReply,
  RuleBody,
  RuleParams,
  RulePutBody,
  RuleS,
  RulesReply,
  SilenceBody,
  SilenceParams,
  SilenceS,
  SilencesReply,
  TestReply,
} from '../alert-schemas.ts'
import { errorReplies } from '../schemas.ts'

export const alertRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { queue, config } = app.dtq
  const store = queue.alerts
  const channels = configuredChannels(config)
  const isBuiltin = (id: string) => builtinRules(config).some((r) => r.id === id)
  const view = (r: Awaited<ReturnType<typeof store.rules>>[number]) => ({
    ...r,
    builtin: r.builtin ?? false,
    overridden: r.overridden ?? false,
  })

  app.get(
    '/alerts',
    {
      config: { role: 'read' },
      schema: {
        tags: ['alerts'],
        summary:
          'Alerts now: firing and pending, with acknowledgement and silence; channels and delivery counts',
        response: { 200: AlertsReply, ...errorReplies() },
      },
    },
    async () => {
      const [alerts, sent] = await Promise.all([store.list(), store.sentCounts()])
      return {
        alerts,
        firing: alerts.filter((a) => a.status === 'firing').length,
        pending: alerts.filter((a) => a.status === 'pending').length,
        channels: channels.map((c) => c.name),
        sent,
      }
    },
  )

  app.get(
    '/alerts/history',
    {
      config: { role: 'read' },
      schema: {
        tags: ['alerts'],
        summary:
          'What happened, newest first: firing, resolved, acknowledged, silences, purges, digests, failed deliveries',
        querystring: HistoryQuery,
        response: { 200: HistoryReply, ...errorReplies() },
      },
    },
    async (req) => store.history(req.query.limit ?? 100, req.query.before),
  )

  app.get(
    '/alerts/rules',
    {
      config: { role: 'read' },
      schema: {
        tags: ['alerts'],
        summary: 'The rules: built-in ones (from the ALERT_* settings) and stored ones',
        response: { 200: RulesReply, ...errorReplies() },
      },
    },
    async () => ({ rules: (await store.rules(config)).map(view) }),
  )

  app.post(
    '/alerts/rules',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['alerts'],
        summary: 'Add a rule (409 if its id exists: use PUT to replace one, built-in ones too)',
        body: RuleBody,
        response: { 201: RuleS, ...errorReplies(409) },
      },
    },
    async (req, reply) => {
      if (isBuiltin(req.body.id) || (await store.storedRule(req.body.id)))
        throw new DtqError(
          'INVALID_STATE',
          `rule ${req.body.id} exists: PUT /alerts/rules/${req.body.id} replaces it`,
        )
      const rule = await store.putRule(req.body, false)
      return reply.code(201).send(view({ ...rule, builtin: false }))
    },
  )

  app.put(
    '/alerts/rules/:id',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['alerts'],
        summary: 'Create or replace a rule (a built-in id stores an override of its settings)',
        params: RuleParams,
        body: RulePutBody,
        response: { 200: RuleS, ...errorReplies() },
      },
    },
    async (req) => {
      const builtin = isBuiltin(req.params.id)
      const rule = await store.putRule({ ...req.body, id: req.params.id }, builtin)
      return view({ ...rule, builtin, overridden: builtin })
    },
  )

  app.delete(
    '/alerts/rules/:id',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['alerts'],
        summary:
          'Delete a stored rule (a built-in one falls back to its settings; disable it with PUT enabled=false)',
        params: RuleParams,
        response: { 200: RulesReply, ...errorReplies(404, 409) },
      },
    },
    async (req) => {
      const { id } = req.params
      if (!(await store.deleteRule(id))) {
        if (isBuiltin(id))
          throw new DtqError(
            'INVALID_STATE',
            `rule ${id} is built in: PUT it with enabled=false to turn it off`,
          )
        throw new DtqError('NOT_FOUND', `no rule ${id}`)
      }
      return { rules: (await store.rules(config)).map(view) }
    },
  )

  app.post(
    '/alerts/:id/ack',
    {
      config: { role: 'write' },
      // The body (who acknowledges) is optional: none is `{}`.
      preValidation: (req, _reply, done) => {
        req.body ??= {}
        done()
      },
      schema: {
        tags: ['alerts'],
        summary: 'Acknowledge a firing alert: no more repeats until it resolves',
        params: AlertParams,
        body: AckBody,
        response: { 200: AlertS, ...errorReplies(404, 409) },
      },
    },
    async (req) => store.ack(req.params.id, req.body.by ?? 'api'),
  )

  app.get(
    '/alerts/silences',
    {
      config: { role: 'read' },
      schema: {
        tags: ['alerts'],
        summary: 'Live silences',
        response: { 200: SilencesReply, ...errorReplies() },
      },
    },
    async () => ({ silences: await store.silences() }),
  )

  app.post(
    '/alerts/silences',
    {
      config: { role: 'write' },
      schema: {
        tags: ['alerts'],
        summary: 'Silence alerts of a rule and/or labels (queue, task type) until a time',
        description:
          'At least one of rule, queue, task_type; `until` (ms since the epoch) or `duration_ms`. A silenced alert still moves (pending, firing, resolved: in the history) but notifies nothing; one still firing when the silence ends is notified then.',
        body: SilenceBody,
        response: { 201: SilenceS, ...errorReplies() },
      },
    },
    async (req, reply) => {
      const b = req.body
      const problems: string[] = []
      if (!b.rule && !b.queue && !b.task_type) problems.push('give at least one of rule, queue, task_type')
      if ((b.until === undefined) === (b.duration_ms === undefined))
        problems.push('give until or duration_ms (one)')
      if (problems.length) throw new DtqError('VALIDATION', 'invalid silence', { problems })
      const until = b.until ?? queue.clock.now() + b.duration_ms!
      const silence = await store.addSilence({
        rule: b.rule ?? null,
        queue: b.queue ?? null,
        task_type: b.task_type ?? null,
        until,
        comment: b.comment ?? '',
        created_by: b.by ?? 'api',
      })
      return reply.code(201).send(silence)
    },
  )

  app.delete(
    '/alerts/silences/:id',
    {
      config: { role: 'write' },
      schema: {
        tags: ['alerts'],
        summary: 'End a silence now',
        params: SilenceParams,
        response: { 200: SilencesReply, ...errorReplies(404) },
      },
    },
    async (req) => {
      if (!(await store.deleteSilence(req.params.id, 'api')))
        throw new DtqError('NOT_FOUND', `no silence ${req.params.id}`)
      return { silences: await store.silences() }
    },
  )

  app.post(
    '/alerts/test',
    {
      config: { role: 'write' },
      schema: {
        tags: ['alerts'],
        summary: 'Send a test alert through each configured channel now; the answer says how each went',
        response: { 200: TestReply, ...errorReplies() },
      },
    },
    async () => ({ results: await sendTestAlert(channels, store, 'api') }),
  )
}
