/**
 * The alerts' block of /metrics (ADR 0025), appended by the /metrics route: deliveries per
 * channel and outcome -- seed 004's `dlq_alerts_sent_total` (alert frequency:
 * `rate(dlq_alerts_sent_total{outcome="sent"}[1h])`) -- and the alerts firing now. Counts live
 * in Redis, so every API instance reports the fleet's totals.
 */
import type { AlertStore } from '../redis/alerts.ts'

export async function alertMetrics(store: AlertStore): Promise<string> {
  const [sent, alerts] = await Promise.all([store.sentCounts(), store.list()])
  const lines = [
    '# HELP dlq_alerts_sent_total Alert notifications by channel and outcome (sent; retried: an attempt failed; failed: given up).',
    '# TYPE dlq_alerts_sent_total counter',
    ...sent.map((c) => `dlq_alerts_sent_total{channel="${c.channel}",outcome="${c.outcome}"} ${c.count}`),
    '# HELP dtq_alerts_firing Alerts firing now, by severity.',
    '# TYPE dtq_alerts_firing gauge',
  ]
  for (const sev of ['critical', 'warning', 'info'])
    lines.push(
      `dtq_alerts_firing{severity="${sev}"} ${alerts.filter((a) => a.status === 'firing' && a.severity === sev).length}`,
    )
  return `${lines.join('\n')}\n`
}
