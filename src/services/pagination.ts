import { validationError } from './errors.js';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

export type Page = { limit: number; after: readonly string[] | undefined };

/** Cursors are opaque to clients: base64url of the last row's sort key. */
export function encodeCursor(key: readonly string[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor(cursor: string | undefined, size: number): readonly string[] | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length === size && key.every((part) => typeof part === 'string')) {
      return key;
    }
  } catch {
    // Falls through to the validation error below.
  }
  throw validationError('cursor', 'is not a cursor this API returned');
}

export function pageOf(
  query: { limit?: number | undefined; cursor?: string | undefined },
  keySize: number,
): Page {
  return { limit: query.limit ?? DEFAULT_LIMIT, after: decodeCursor(query.cursor, keySize) };
}

/** Fetch limit + 1 rows; the extra one only tells whether another page exists. */
export function finishPage<Row>(
  rows: Row[],
  limit: number,
  keyOf: (row: Row) => readonly string[],
): { items: Row[]; nextCursor: string | null } {
  if (rows.length <= limit) return { items: rows, nextCursor: null };
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: last === undefined ? null : encodeCursor(keyOf(last)) };
}
