/** Flows (docs/decisions/0019): create a graph of jobs at once, read it with live states. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { DtqError } from '../../errors.ts'
import type { FlowSpec } from '../../queue/flows.ts'
import { RESERVED_TASK_PREFIX } from '../../queue/validate.ts'
import { CreateFlow, errorReplies, FlowParams, FlowS } from '../schemas.ts'

const errors = errorReplies(404, 409)

export const flowRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { queue } = app.dtq

  app.post(
    '/flows',
    {
      config: { role: 'write' },
      schema: {
        tags: ['flows'],
        summary:
          'Create a flow: jobs that wait for their parents (201), or the same flow again for a repeated idempotency_key (200)',
        description:
          'Each node is a job spec (as POST /jobs, in its own queue) with a `key` and `depends_on` (parent keys, or {node, on_failure: fail | ignore | cancel}). A node starts when every parent completed and reads their results in `parent_results`. The graph is checked whole -- every node, unknown keys, cycles, at most FLOW_MAX_NODES nodes -- and an invalid one is a 400 that writes nothing. A repeated idempotency_key answers the same flow (finishing its creation if an earlier request was cut short).',
        body: CreateFlow,
        response: { 200: FlowS, 201: FlowS, ...errors },
      },
    },
    async (req, reply) => {
      const spec = req.body as unknown as FlowSpec
      for (const n of spec.nodes) {
        if (typeof n.task_type === 'string' && n.task_type.startsWith(RESERVED_TASK_PREFIX))
          throw new DtqError('VALIDATION', `node ${n.key}: task_type ${n.task_type} is reserved`)
      }
      const { flow, created } = await queue.addFlow(spec)
      reply.code(created ? 201 : 200)
      if (created) reply.header('location', `/flows/${flow.id}`)
      return flow
    },
  )

  app.get(
    '/flows/:id',
    {
      config: { role: 'read' },
      schema: {
        tags: ['flows'],
        summary: "A flow: its nodes with their jobs' live states, and its edges",
        params: FlowParams,
        response: { 200: FlowS, ...errors },
      },
    },
    async (req) => {
      const flow = await queue.getFlow(req.params.id)
      if (!flow) throw new DtqError('NOT_FOUND', `flow ${req.params.id} not found`)
      return flow
    },
  )
}
