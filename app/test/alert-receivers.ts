/**
 * Real local receivers for the alert channels' tests: an HTTP server on a free port (webhook and
 * Slack) whose answers a test scripts (a status per request, or hang -- noting when the sender
 * gave a hung request up), and an SMTP server
 * (smtp-server) that keeps every message it accepts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'

export interface Received {
  at: number
  path: string
  headers: IncomingMessage['headers']
  body: string
  /** A hung request: when its connection closed (the sender gave up on it). */
  closedAt?: number
}

export interface HttpReceiver {
  url: string
  received: Received[]
  /** Answers to the next requests, in order ('hang': never answer); then 200. */
  script: Array<number | 'hang'>
  /** Every request now hangs (until unset). */
  hangAll: boolean
  close(): Promise<void>
}

export async function startHttpReceiver(): Promise<HttpReceiver> {
  const hanging: ServerResponse[] = []
  const r: HttpReceiver = {
    url: '',
    received: [],
    script: [],
    hangAll: false,
    close: async () => {
      for (const res of hanging) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const answer = r.hangAll ? 'hang' : (r.script.shift() ?? 200)
      const got: Received = {
        at: Date.now(),
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      }
      r.received.push(got)
      if (answer === 'hang') {
        res.on('close', () => {
          got.closedAt = Date.now()
        })
        hanging.push(res)
        return
      }
      res.writeHead(answer, { 'content-type': 'text/plain' }).end(answer === 200 ? 'ok' : 'no')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return r
}

export interface Mail {
  from: string
  to: string[]
  raw: string
}

export interface SmtpReceiver {
  port: number
  mails: Mail[]
  close(): Promise<void>
}

/** A plain SMTP server (no TLS, any login accepted and recorded). */
export async function startSmtpReceiver(): Promise<SmtpReceiver & { logins: string[] }> {
  const mails: Mail[] = []
  const logins: string[] = []
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    logger: false,
    onAuth(auth, _session, cb) {
      logins.push(`${auth.username}:${auth.password}`)
      cb(null, { user: auth.username })
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((x) => x.address),
          raw: Buffer.concat(chunks).toString(),
        })
        cb()
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.server.address() as AddressInfo).port
  return {
    port,
    mails,
    logins,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
