import { type RawBuilder, sql } from 'kysely';
import { isCalendarDate } from '../domain/civil-date.js';
import { validationError } from './errors.js';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

/** The last row's sort key: a timestamp as PostgreSQL prints it (full microseconds) and a UUID. */
export type TimeIdKey = readonly [string, string];
export type Page = { limit: number; after: TimeIdKey | undefined };

const PG_TIMESTAMP = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d{1,6})?[+-](\d\d)(?::(\d\d))?$/;

/**
 * A timestamp PostgreSQL could have printed: a real calendar date in years 1–9999, a real time of day
 * and an offset within ±15:59. A cursor is opaque but arrives from the client, so a forged one must be
 * a 400, never an SQL error.
 */
function isPgTimestamp(text: string): boolean {
  const m = PG_TIMESTAMP.exec(text);
  if (m === null) return false;
  const [year, month, day, hour, minute, second, , offsetHour, offsetMinute] = m.slice(1).map(Number);
  return (
    year !== undefined &&
    month !== undefined &&
    day !== undefined &&
    year >= 1 &&
    isCalendarDate(year, month, day) &&
    Number(hour) <= 23 &&
    Number(minute) <= 59 &&
    Number(second) <= 59 &&
    Number(offsetHour) <= 15 &&
    (offsetMinute === undefined || Number.isNaN(offsetMinute) || offsetMinute <= 59)
  );
}
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Cursors are opaque to clients: base64url of the last row's sort key. */
export function encodeCursor(key: TimeIdKey): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): TimeIdKey | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(key) &&
      key.length === 2 &&
      typeof key[0] === 'string' &&
      typeof key[1] === 'string' &&
      isPgTimestamp(key[0]) &&
      UUID.test(key[1])
    ) {
      return [key[0], key[1]];
    }
  } catch {
    // Falls through to the validation error below.
  }
  throw validationError('cursor', 'is not a cursor this API returned');
}

export function pageOf(query: { limit?: number | undefined; cursor?: string | undefined }): Page {
  return { limit: query.limit ?? DEFAULT_LIMIT, after: decodeCursor(query.cursor) };
}

/**
 * The sort key as text. A JavaScript Date keeps milliseconds and PostgreSQL microseconds, so a cursor
 * built from a Date would repeat or skip rows created within the same millisecond.
 */
export function timeKey(column: string): RawBuilder<string> {
  return sql<string>`${sql.ref(column)}::text`;
}

/** Rows strictly after the cursor in (time, id) order; a row comparison the index can serve. */
export function afterKey(
  timeColumn: string,
  idColumn: string,
  after: TimeIdKey,
  direction: 'asc' | 'desc' = 'asc',
): RawBuilder<boolean> {
  const operator = sql.raw(direction === 'asc' ? '>' : '<');
  return sql<boolean>`(${sql.ref(timeColumn)}, ${sql.ref(idColumn)}) ${operator} (${after[0]}::timestamptz, ${after[1]}::uuid)`;
}

/** Fetch limit + 1 rows; the extra one only tells whether another page exists. */
export function finishPage<Row extends { cursor_time: string }>(
  rows: Row[],
  limit: number,
  idOf: (row: Row) => string,
): { items: Row[]; nextCursor: string | null } {
  if (rows.length <= limit) return { items: rows, nextCursor: null };
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: last === undefined ? null : encodeCursor([last.cursor_time, idOf(last)]) };
}
