/** Schedules (ADR 0018): upsert, list, read with next runs and history, remove, pause, resume, trigger, preview. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ScheduleSpec } from '../../queue/schedule.ts'
import {
  errorReplies,
  OkReply,
  PreviewQuery,
  PreviewReply,
  ScheduleBody,
  ScheduleDetailS,
  ScheduleParams,
  SchedulesReply,
  TriggerReply,
} from '../schemas.ts'

const errors = errorReplies(404, 409)

export const scheduleRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { queue } = app.dtq

  app.get(
    '/schedules',
    {
      config: { role: 'read' },
      schema: {
        tags: ['schedules'],
        summary: 'Every schedule, with its next fire time and the state of its last job',
        response: { 200: SchedulesReply, ...errors },
      },
    },
    async () => ({ items: await queue.listSchedules() }),
  )

  app.get(
    '/schedules/preview',
    {
      config: { role: 'read' },
      schema: {
        tags: ['schedules'],
        summary: 'The next five times of a cron expression in a time zone (writes nothing)',
        querystring: PreviewQuery,
        response: { 200: PreviewReply, ...errors },
      },
    },
    async (req) => {
      const tz = req.query.tz ?? 'UTC'
      return { tz, times: queue.schedules.preview(req.query.cron, tz) }
    },
  )

  app.get(
    '/schedules/:name',
    {
      config: { role: 'read' },
      schema: {
        tags: ['schedules'],
        summary: 'A schedule with its next five fire times and its fire history (newest first)',
        params: ScheduleParams,
        response: { 200: ScheduleDetailS, ...errors },
      },
    },
    async (req) => queue.schedules.getOrThrow(req.params.name),
  )

  app.put(
    '/schedules/:name',
    {
      config: { role: 'write' },
      schema: {
        tags: ['schedules'],
        summary: 'Create or replace a schedule (cron with seconds in a time zone, or every_ms)',
        description:
          'Exactly one job per fire time, however many API and worker processes run (each fires due schedules; a compare-and-set on the stored next fire time lets one of them make the job). Replacing a schedule keeps its history and counts and sets its next fire time from now. Bad input is a 400 and writes nothing.',
        params: ScheduleParams,
        body: ScheduleBody,
        response: { 200: ScheduleDetailS, ...errors },
      },
    },
    async (req) => queue.upsertSchedule(req.params.name, req.body as ScheduleSpec),
  )

  app.delete(
    '/schedules/:name',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['schedules'],
        summary: 'Delete a schedule and its history (its jobs stay)',
        params: ScheduleParams,
        response: { 200: OkReply, ...errors },
      },
    },
    async (req) => {
      await queue.removeSchedule(req.params.name)
      return { ok: true }
    },
  )

  for (const action of ['pause', 'resume'] as const) {
    app.post(
      `/schedules/:name/${action}`,
      {
        config: { role: 'write' },
        schema: {
          tags: ['schedules'],
          summary:
            action === 'pause'
              ? 'Pause a schedule: no fires until resumed'
              : 'Resume a schedule from now (times passed while paused are not fired)',
          params: ScheduleParams,
          response: { 200: ScheduleDetailS, ...errors },
        },
      },
      async (req) =>
        action === 'pause' ? queue.pauseSchedule(req.params.name) : queue.resumeSchedule(req.params.name),
    )
  }

  app.post(
    '/schedules/:name/trigger',
    {
      config: { role: 'write' },
      schema: {
        tags: ['schedules'],
        summary: 'Fire now: one job from the template; the next fire time does not move',
        params: ScheduleParams,
        response: { 201: TriggerReply, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send(await queue.triggerSchedule(req.params.name)),
  )
}
