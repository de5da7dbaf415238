/**
 * Search and export across live (Redis) and archived (PostgreSQL) jobs, and saved filter
 * presets (ADR 0029). Without DATABASE_URL the live part only, with `history: "disabled"`.
 * Every filter is checked before anything is read or written: a bad one is a 400 naming it.
 */
import { Readable } from 'node:stream'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { DtqError } from '../../errors.ts'
import { MAX_PRESET_BYTES, MAX_PRESETS } from '../../redis/search-store.ts'
import { SearchEngine } from '../../search/engine.ts'
import { startExport } from '../../search/export.ts'
import { decodeSearchCursor, parseFilters } from '../../search/filters.ts'
import {
  ExportQuery,
  type Preset,
  PresetBody,
  PresetName,
  PresetS,
  SearchQuery,
  SearchReply,
} from '../../search/schemas.ts'
import { errorReplies } from '../schemas.ts'

export const searchRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, queue } = app.dtq
  const { engine, store, close } = SearchEngine.fromConfig(queue, config)
  app.addHook('onClose', close)

  app.get(
    '/search',
    {
      config: { role: 'read' },
      schema: {
        tags: ['search'],
        summary: 'Search live and archived jobs: filters, payload paths, free text; cursor pagination',
        description:
          'Live jobs (Redis, at most SEARCH_LIVE_SCAN read: `live.capped`) and archived ones (PostgreSQL, when DATABASE_URL is set; without `from`, the last SEARCH_DEFAULT_DAYS: `range.defaulted`), merged newest first (finished_at, or created_at while not finished), deduplicated by (queue, id) with the live copy winning. `where` (repeatable, at most 8): `path=value` -- the JSON path equals the JSON scalar (`user.id=42`, `user.name="ann"`, or bare text as a string), arrays matched by any element -- or `path~text` (the text at the path contains it, any case). Paths: dotted names with [index], at most 8 steps. `q`: free text over payload and errors.',
        querystring: SearchQuery,
        response: { 200: SearchReply, ...errorReplies() },
      },
    },
    async (req) => {
      const { cursor, limit, ...raw } = req.query
      const filters = parseFilters(raw)
      if (cursor) decodeSearchCursor(cursor)
      return engine.page(filters, cursor, limit ?? 50)
    },
  )

  app.get(
    '/search/export',
    {
      config: { role: 'read' },
      schema: {
        tags: ['search'],
        summary: 'Stream a search as CSV (RFC 4180) or NDJSON, any size, in bounded memory',
        description:
          'The same filters and order as GET /search, every page streamed as it is read (batches of 1000 from PostgreSQL, with backpressure). At most `limit` rows (default and cap: SEARCH_EXPORT_MAX; above it a 400). The headers x-dtq-history and x-dtq-live-capped say what the export covers. CSV columns: ' +
          'source, queue, job_id, task_type, state, created_at, finished_at (ISO 8601), attempts, worker, error_class, error, payload, result (JSON).',
        querystring: ExportQuery,
        response: { ...errorReplies() },
      },
    },
    async (req, reply) => {
      const { format = 'csv', limit, ...raw } = req.query
      const filters = parseFilters(raw)
      if (limit !== undefined && limit > config.searchExportMax)
        throw new DtqError(
          'VALIDATION',
          `limit ${limit} is above the export cap SEARCH_EXPORT_MAX (${config.searchExportMax}): narrow the search or export in parts (by time range)`,
        )
      const max = limit ?? config.searchExportMax
      const { live, lines } = await startExport(engine, filters, format, max)
      reply
        .header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson')
        .header('content-disposition', `attachment; filename="dtq-search.${format}"`)
        .header('x-dtq-history', engine.historyInfo().history)
        .header('x-dtq-live-capped', String(live.capped))
        .header('x-dtq-export-limit', String(max))
      return reply.send(Readable.from(lines, { objectMode: false, highWaterMark: 64 * 1024 }) as never)
    },
  )

  app.get(
    '/search/presets',
    {
      config: { role: 'read' },
      schema: {
        tags: ['search'],
        summary: 'Saved search filter presets, by name',
        response: { 200: Type.Object({ items: Type.Array(PresetS) }), ...errorReplies() },
      },
    },
    async () => ({ items: (await store.presets()) as Preset[] }),
  )

  app.post(
    '/search/presets',
    {
      config: { role: 'write' },
      schema: {
        tags: ['search'],
        summary: `Save a filter preset under a name (replacing one of that name); at most ${MAX_PRESETS}`,
        body: PresetBody,
        response: { 200: PresetS, 201: PresetS, ...errorReplies(409) },
      },
    },
    async (req, reply) => {
      const { name, filters } = req.body
      parseFilters(filters)
      if (JSON.stringify(filters).length > MAX_PRESET_BYTES)
        throw new DtqError('VALIDATION', `a preset's filters are at most ${MAX_PRESET_BYTES} bytes of JSON`)
      const now = queue.store.clock.now()
      const r = await store.savePreset(name, filters, now)
      if (!r.saved)
        throw new DtqError('INVALID_STATE', `there are ${MAX_PRESETS} presets already: delete one first`)
      reply.code(r.created ? 201 : 200)
      return { name, filters, saved_at: now }
    },
  )

  app.delete(
    '/search/presets/:name',
    {
      config: { role: 'write' },
      schema: {
        tags: ['search'],
        summary: 'Delete a filter preset',
        params: Type.Object({ name: PresetName }, { additionalProperties: false }),
        response: { 204: Type.Null(), ...errorReplies(404) },
      },
    },
    async (req, reply) => {
      if (!(await store.deletePreset(req.params.name)))
        throw new DtqError('NOT_FOUND', `no preset named ${req.params.name}`)
      reply.code(204)
    },
  )
}
