/**
 * The one table of the console: columns say what a header and a cell show; the table draws the
 * markup (scrolling wrapper, header row, one row per item). `selectColumn` adds the checkbox
 * column of tables with bulk actions.
 */
import type { ReactNode } from 'react'

export interface Column<T> {
  /** Header text (unique in the table); with `hideHeader` only screen readers read it (action columns). */
  header: string
  hideHeader?: boolean
  /** Draws the header instead of its text (the select-all checkbox). */
  renderHeader?: (rows: T[]) => ReactNode
  /** Tooltip on the header. */
  headerTitle?: string
  cell: (row: T) => ReactNode
  /** Class of every cell in the column (`mono`, `error-text`). */
  className?: string
  /** Tooltip on a cell. */
  cellTitle?: (row: T) => string
}

export function DataTable<T>({
  rows,
  columns,
  rowKey,
}: {
  rows: T[]
  columns: Column<T>[]
  rowKey: (row: T) => string
}) {
  return (
    <div className="table-wrap">
      <table>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.header} title={c.headerTitle}>
                {c.renderHeader ? (
                  c.renderHeader(rows)
                ) : c.hideHeader ? (
                  <span className="sr-only">{c.header}</span>
                ) : (
                  c.header
                )}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={rowKey(row)}>
              {columns.map((c) => (
                <td key={c.header} className={c.className} title={c.cellTitle?.(row)}>
                  {c.cell(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

/** A checkbox per row and a "select all" in the header, over the set of selected row keys. */
export function selectColumn<T>({
  selected,
  onChange,
  rowKey: key,
  label,
  allLabel,
}: {
  selected: Set<string>
  onChange: (next: Set<string>) => void
  /** What the selection holds for a row (the table's `rowKey`). */
  rowKey: (row: T) => string
  /** Accessible name of a row's checkbox. */
  label: (row: T) => string
  allLabel: string
}): Column<T> {
  return {
    header: 'Select',
    renderHeader: (rows) => (
      <input
        type="checkbox"
        aria-label={allLabel}
        checked={rows.every((r) => selected.has(key(r)))}
        onChange={(e) => onChange(e.target.checked ? new Set(rows.map(key)) : new Set())}
      />
    ),
    cell: (row) => (
      <input
        type="checkbox"
        aria-label={label(row)}
        checked={selected.has(key(row))}
        onChange={(e) => {
          const next = new Set(selected)
          if (e.target.checked) next.add(key(row))
          else next.delete(key(row))
          onChange(next)
        }}
      />
    ),
  }
}
