/**
 * The `dtq worker` process's handler in `pnpm bench` (dtq.ts): a no-op that prints, once, when
 * the first measured job runs -- the first without `warm` in its payload (the drain is timed
 * from there, so neither the process's start-up nor its warm-up jobs are counted).
 */
let first = true

export default {
  noop: (job: { payload: unknown }) => {
    if (first && !(job.payload as { warm?: boolean } | null)?.warm) {
      first = false
      process.stdout.write(`first ${performance.timeOrigin + performance.now()}\n`)
    }
    return null
  },
}
