/**
 * The `dtq worker` process's handler in `pnpm bench` (dtq.ts): a no-op that prints, once, when it
 * first runs (the drain is timed from there, so the process's start-up is not counted).
 */
let first = true

export default {
  noop: () => {
    if (first) {
      first = false
      process.stdout.write(`first ${performance.timeOrigin + performance.now()}\n`)
    }
    return null
  },
}
