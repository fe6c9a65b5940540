import { sql } from 'kysely';
import type { Interval } from '../../domain/index.js';
import type { Occurrence } from '../../ical/expand-object.js';
import type { ConnectionRow, Db, SyncWarnings } from '../../storage/database.js';
import type { DatabaseKind } from '../../storage/open-database.js';
import type { CalendarParser } from '../parsing/parser.js';
import { calendarBudget, type CalendarBudget, type StoredObject } from '../parsing/expand.js';

const BATCH = 200;

/**
 * How many occurrences one transaction and one INSERT write. PostgreSQL readers never wait for a
 * writer, so there a sync writes its objects 200 at a time in one transaction each, with all their
 * occurrences; the embedded database runs one transaction at a time, so there each is kept short
 * (about 50 ms), and a request waits for no more than one.
 */
export type StorageLimits = { occurrencesPerTransaction: number; occurrencesPerInsert: number };

export function storageLimits(kind: DatabaseKind | undefined): StorageLimits {
  return kind === 'embedded'
    ? { occurrencesPerTransaction: 500, occurrencesPerInsert: 250 }
    : { occurrencesPerTransaction: Number.POSITIVE_INFINITY, occurrencesPerInsert: 1000 };
}

/**
 * Writes objects from the provider with their occurrences, replacing what was stored for them.
 * Occurrences of the resource's own bookings never block availability: the booking itself does.
 *
 * Each transaction writes at most `limits.occurrencesPerTransaction` occurrences, so a calendar of
 * long series never holds the embedded database for long. A series with more is written over
 * several: its event row is kept without an etag until the last, so a sync that stops in between
 * reads it again next time instead of trusting half of it.
 */
export async function storeObjects(
  db: Db,
  connection: ConnectionRow,
  objects: readonly StoredObject[],
  now: number,
  limits: StorageLimits = storageLimits('postgres'),
): Promise<void> {
  const perTransaction = limits.occurrencesPerTransaction;
  for (const batch of storageBatches(objects, perTransaction)) {
    const [first] = batch;
    const spills = batch.length === 1 && first !== undefined && occurrenceCount(first) > perTransaction;
    const rest = await db.transaction().execute(async (trx) => {
      const own = await ownBookingIds(trx, connection, batch);
      const rows = await trx
        .insertInto('calendar_events')
        .values(
          batch.map((object) => ({
            connection_id: connection.connection_id,
            organization_id: connection.organization_id,
            remote_id: object.remoteId,
            etag: spills ? null : object.etag,
            uid: object.result.ok ? object.result.summary.uid : null,
            ics: withoutNul(object.ics),
            booking_id: object.result.ok ? uuidOrNull(object.result.summary.bookingId) : null,
            recurring: object.result.ok && object.result.summary.recurring,
            title: object.result.ok ? object.result.summary.title : null,
            parse_error: object.result.ok ? null : withoutNul(object.result.error),
            read_warning: readWarning(object),
            updated_at: new Date(now),
          })),
        )
        .onConflict((oc) =>
          oc.columns(['connection_id', 'remote_id']).doUpdateSet((eb) => ({
            etag: eb.ref('excluded.etag'),
            uid: eb.ref('excluded.uid'),
            ics: eb.ref('excluded.ics'),
            booking_id: eb.ref('excluded.booking_id'),
            recurring: eb.ref('excluded.recurring'),
            title: eb.ref('excluded.title'),
            parse_error: eb.ref('excluded.parse_error'),
            read_warning: eb.ref('excluded.read_warning'),
            updated_at: eb.ref('excluded.updated_at'),
          })),
        )
        .returning(['event_id', 'remote_id'])
        .execute();
      const idByRemote = new Map(rows.map((row) => [row.remote_id, row.event_id]));
      const eventIds = [...idByRemote.values()];
      if (eventIds.length > 0) {
        await trx.deleteFrom('calendar_occurrences').where('event_id', 'in', eventIds).execute();
      }
      const occurrenceRows = batch.flatMap((object) => {
        const eventId = idByRemote.get(object.remoteId);
        if (!eventId || !object.result.ok) return [];
        const bookingId = object.result.summary.bookingId;
        const blocksAtAll = connection.blocks_availability && !(bookingId && own.has(bookingId));
        return object.result.occurrences.map((occurrence) =>
          occurrenceRow(connection, eventId, occurrence, blocksAtAll),
        );
      });
      await insertOccurrences(trx, occurrenceRows.slice(0, perTransaction), limits);
      return { rows: occurrenceRows.slice(perTransaction), eventId: eventIds[0] };
    });
    for (let at = 0; at < rest.rows.length; at += perTransaction) {
      const last = at + perTransaction >= rest.rows.length;
      await db.transaction().execute(async (trx) => {
        await insertOccurrences(trx, rest.rows.slice(at, at + perTransaction), limits);
        if (last && rest.eventId && first) {
          await trx
            .updateTable('calendar_events')
            .set({ etag: first.etag })
            .where('event_id', '=', rest.eventId)
            .execute();
        }
      });
    }
  }
}

type OccurrenceRow = ReturnType<typeof occurrenceRow>;

async function insertOccurrences(
  trx: Db,
  rows: readonly OccurrenceRow[],
  limits: StorageLimits,
): Promise<void> {
  const perInsert = limits.occurrencesPerInsert;
  for (let at = 0; at < rows.length; at += perInsert) {
    await trx
      .insertInto('calendar_occurrences')
      .values(rows.slice(at, at + perInsert))
      .execute();
  }
}

function occurrenceCount(object: StoredObject): number {
  return object.result.ok ? object.result.occurrences.length : 0;
}

/**
 * Objects in groups that each make one transaction: at most BATCH objects and `perTransaction`
 * occurrences; an object with more makes a group of its own.
 */
function* storageBatches(
  objects: readonly StoredObject[],
  perTransaction: number,
): Generator<StoredObject[]> {
  let batch: StoredObject[] = [];
  let rows = 0;
  for (const object of objects) {
    const count = occurrenceCount(object);
    if (batch.length > 0 && (batch.length >= BATCH || rows + count > perTransaction)) {
      yield batch;
      batch = [];
      rows = 0;
    }
    batch.push(object);
    rows += count;
  }
  if (batch.length > 0) yield batch;
}

/** Warnings of an event that was read, joined into one reason (bounded like any stored text). */
function readWarning(object: StoredObject): string | null {
  const warnings = object.result.ok ? object.result.warnings : undefined;
  if (!warnings || warnings.length === 0) return null;
  const text = [...new Set(warnings)].join('; ');
  return withoutNul(text.length > 1000 ? `${text.slice(0, 999)}…` : text);
}

/** PostgreSQL stores no text holding NUL; no calendar means anything by one. */
function withoutNul(text: string): string {
  return text.includes('\0') ? text.replace(/\0/g, '') : text;
}

/** How many events with warnings a connection names; the count covers them all. */
export const WARNINGS_SHOWN = 50;

/** The stored events of a connection that could not be read, or only in part, with their UID and why. */
export async function eventWarnings(db: Db, connectionId: string): Promise<SyncWarnings> {
  const base = db
    .selectFrom('calendar_events')
    .where('connection_id', '=', connectionId)
    .where((eb) => eb.or([eb('parse_error', 'is not', null), eb('read_warning', 'is not', null)]));
  const rows = await base
    .select(['uid', 'remote_id', 'parse_error', 'read_warning'])
    .orderBy('remote_id')
    .limit(WARNINGS_SHOWN)
    .execute();
  const items = rows.map((row) => ({
    uid: row.uid ?? row.remote_id,
    reason: row.parse_error ?? row.read_warning ?? '',
  }));
  if (rows.length < WARNINGS_SHOWN) return { items, total: rows.length };
  const counted = await base.select((eb) => eb.fn.countAll<string>().as('count')).executeTakeFirstOrThrow();
  return { items, total: Number(counted.count) };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function uuidOrNull(value: string | null): string | null {
  return value && UUID.test(value) ? value.toLowerCase() : null;
}

/** Half-open like bookings; an instant event (no duration) is kept as a point so it can be listed. */
function rangeOf(startsAt: number, endsAt: number): string {
  const start = new Date(startsAt).toISOString();
  return endsAt > startsAt ? `[${start},${new Date(endsAt).toISOString()})` : `[${start},${start}]`;
}

function occurrenceRow(
  connection: ConnectionRow,
  eventId: string,
  occurrence: Occurrence,
  blocksAtAll: boolean,
) {
  return {
    event_id: eventId,
    connection_id: connection.connection_id,
    resource_id: connection.resource_id,
    during: rangeOf(occurrence.startsAt, occurrence.endsAt),
    all_day: occurrence.allDay,
    blocks:
      blocksAtAll &&
      occurrence.endsAt > occurrence.startsAt &&
      occurrence.status !== 'cancelled' &&
      occurrence.transparency === 'opaque',
    status: occurrence.status,
    transparency: occurrence.transparency,
    title: occurrence.title,
    recurrence_id: occurrence.recurrenceId,
  };
}

/** Booking ids in this batch that are bookings of the connection's own resource. */
async function ownBookingIds(
  db: Db,
  connection: ConnectionRow,
  batch: readonly StoredObject[],
): Promise<Set<string>> {
  const ids = [
    ...new Set(
      batch.flatMap((object) => {
        const id = object.result.ok ? uuidOrNull(object.result.summary.bookingId) : null;
        return id ? [id] : [];
      }),
    ),
  ];
  if (ids.length === 0) return new Set();
  const rows = await db
    .selectFrom('bookings')
    .select('booking_id')
    .where('booking_id', 'in', ids)
    .where('organization_id', '=', connection.organization_id)
    .where(sql<boolean>`${connection.resource_id}::uuid = any(resource_ids)`)
    .execute();
  return new Set(rows.map((row) => row.booking_id));
}

export async function removeObjects(
  db: Db,
  connectionId: string,
  remoteIds: readonly string[],
): Promise<void> {
  for (let index = 0; index < remoteIds.length; index += BATCH) {
    await db
      .deleteFrom('calendar_events')
      .where('connection_id', '=', connectionId)
      .where('remote_id', 'in', remoteIds.slice(index, index + BATCH))
      .execute();
  }
}

/**
 * Occurrences the connection keeps from earlier syncs: those of its events other than `replaced`
 * (or, with `recurring: false`, those of its single events). What one sync may store is what the
 * calendar's budget leaves after them, so syncs that each add a little never add up past it.
 */
export async function occurrencesKept(
  db: Db,
  connectionId: string,
  keep: { replaced: readonly string[] } | { recurring: false },
): Promise<number> {
  let query = db
    .selectFrom('calendar_occurrences as o')
    .innerJoin('calendar_events as e', 'e.event_id', 'o.event_id')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('o.connection_id', '=', connectionId);
  if ('replaced' in keep) {
    if (keep.replaced.length > 0) {
      query = query.where(sql<boolean>`not (e.remote_id = any(${sql.val([...keep.replaced])}::text[]))`);
    }
  } else {
    query = query.where('e.recurring', '=', false);
  }
  const row = await query.executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Expands every stored recurring series of the connection again for the current window. */
export async function reexpandSeries(
  db: Db,
  parser: CalendarParser,
  connection: ConnectionRow,
  zone: string,
  window: Interval,
  now: number,
  budget: CalendarBudget = calendarBudget(),
  limits: StorageLimits = storageLimits('postgres'),
): Promise<void> {
  let after = '';
  for (;;) {
    const rows = await db
      .selectFrom('calendar_events')
      .select(['remote_id', 'etag', 'ics'])
      .where('connection_id', '=', connection.connection_id)
      .where('recurring', '=', true)
      .where('remote_id', '>', after)
      .orderBy('remote_id')
      .limit(BATCH)
      .execute();
    if (rows.length === 0) return;
    const events = rows.map((row) => ({ remoteId: row.remote_id, etag: row.etag, ics: row.ics }));
    for await (const part of parser.expandInParts(events, window, zone, budget)) {
      await storeObjects(db, connection, part, now, limits);
    }
    after = rows.at(-1)?.remote_id ?? after;
  }
}
