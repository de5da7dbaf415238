/** Helpers for tests over real processes: dtq CLI workers, private redis-servers, the ledger. */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

export const CLI = new URL('../src/cli/main.ts', import.meta.url).pathname
export const FIXTURE_HANDLERS = new URL('./fixtures/ledger-handlers.ts', import.meta.url).pathname

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `dtq-${name}-`))
}

export interface WorkerProcess {
  child: ChildProcess
  exited: Promise<number | null>
  output: () => string
}

/** Starts `dtq <args>` as a child process, collecting its output. */
export function launch(args: string[], env: Record<string, string>): WorkerProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout?.on('data', (d) => {
    out += d
  })
  child.stderr?.on('data', (d) => {
    out += d
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, exited, output: () => out }
}

export function spawnWorker(env: Record<string, string>, args: string[] = []): WorkerProcess {
  return launch(['worker', '--handlers', FIXTURE_HANDLERS, ...args], env)
}

export async function runCli(env: Record<string, string>, args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    maxBuffer: 64 * 1024 * 1024,
  })
  return stdout
}

/** Executions per job id, from the ledger file. */
export function readLedger(file: string): Map<string, number> {
  const runs = new Map<string, number>()
  if (!existsSync(file)) return runs
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const id = line.split(' ')[0]
    if (id) runs.set(id, (runs.get(id) ?? 0) + 1)
  }
  return runs
}

export interface Verdict {
  accepted: number
  lost: number
  duplicated: number
  unexpected: number
}

/** Jepsen-style count: every accepted id must have completed; executions are counted. */
export function check(accepted: string[], completed: Set<string>, ledger: Map<string, number>): Verdict {
  const acc = new Set(accepted)
  let lost = 0
  let duplicated = 0
  for (const id of acc) {
    if (!completed.has(id)) lost++
    if ((ledger.get(id) ?? 0) > 1) duplicated++
  }
  const unexpected = [...ledger.keys()].filter((id) => !acc.has(id)).length
  return { accepted: acc.size, lost, duplicated, unexpected }
}
