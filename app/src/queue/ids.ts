/** Job ids DTQ generates: decimal numbers, handed out in blocks (redis/id-allocator.ts). Pure rules. */
/**
 * How many ids one INCRBY reserves: one reservation (the INCRBY, then its block's hint) per this
 * many jobs a process adds to a queue.
 */
export const ID_BLOCK = 1000

/** Ids DTQ generates are decimal integers; a caller's own id must not look like one. */
export const GENERATED_ID = /^[0-9]+$/

/** The block of ID_BLOCK ids a generated id belongs to: ids 1-1000 are block 0, 1001-2000 block 1, … */
export function idBlock(id: string): string {
  return String((BigInt(id) - 1n) / BigInt(ID_BLOCK))
}
