/**
 * A flow drawn left to right: each node in the column of its depth (the longest path from a
 * root), rows in the API's order (parents first). Enough for flows of tens of nodes without a
 * layout library; edges are cubic curves from a parent's right side to a child's left.
 */
import type { FlowDto } from '@dtq/app/schemas'

export const NODE_W = 180
export const NODE_H = 52
const COL_GAP = 70
const ROW_GAP = 16
const PAD = 12

export interface Placed {
  key: string
  x: number
  y: number
}

export function layoutFlow(flow: FlowDto): {
  nodes: Map<string, Placed>
  width: number
  height: number
} {
  const depth = new Map<string, number>()
  // The API lists parents before children, so one pass sets every depth.
  for (const n of flow.nodes)
    depth.set(n.key, Math.max(0, ...n.depends_on.map((d) => (depth.get(d.node) ?? 0) + 1)))
  const rows = new Map<number, number>()
  const nodes = new Map<string, Placed>()
  for (const n of flow.nodes) {
    const col = depth.get(n.key) ?? 0
    const row = rows.get(col) ?? 0
    rows.set(col, row + 1)
    nodes.set(n.key, { key: n.key, x: PAD + col * (NODE_W + COL_GAP), y: PAD + row * (NODE_H + ROW_GAP) })
  }
  const cols = Math.max(1, ...[...rows.keys()].map((c) => c + 1))
  const maxRows = Math.max(1, ...rows.values())
  return {
    nodes,
    width: 2 * PAD + cols * NODE_W + (cols - 1) * COL_GAP,
    height: 2 * PAD + maxRows * NODE_H + (maxRows - 1) * ROW_GAP,
  }
}

/** The SVG path of an edge from parent `a` to child `b`. */
export function edgePath(a: Placed, b: Placed): string {
  const x1 = a.x + NODE_W
  const y1 = a.y + NODE_H / 2
  const x2 = b.x
  const y2 = b.y + NODE_H / 2
  const mid = (x1 + x2) / 2
  return `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`
}
