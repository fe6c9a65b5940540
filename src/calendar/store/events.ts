import { sql } from 'kysely';
import type { Interval } from '../../domain/index.js';
import type { Occurrence } from '../../ical/expand-object.js';
import type { ConnectionRow, Db, SyncWarnings } from '../../storage/database.js';
import type { DatabaseKind } from '../../storage/open-database.js';
import type { CalendarParser } from '../parsing/parser.js';
import { calendarBudget, type CalendarBudget, type StoredObject } from '../parsing/expand.js';

const BATCH = 200;

/**
 * How many occurrences one transaction and one statement write. PostgreSQL readers never wait for a
 * writer, so there a sync writes its objects 200 at a time, each group with all its occurrences in one
 * statement. The embedded database runs one transaction at a time and holds the event loop for each
 * statement, so there each transaction is kept short (about 50 ms), made of short statements (the
 * events first, then their occurrences 250 at a time), and a request waits for no more than one.
 */
export type StorageLimits = {
  occurrencesPerTransaction: number;
  occurrencesPerInsert: number;
  /** Occurrences written by the statement that writes their events. */
  occurrencesWithEvents: number;
};

export function storageLimits(kind: DatabaseKind | undefined): StorageLimits {
  return kind === 'embedded'
    ? { occurrencesPerTransaction: 500, occurrencesPerInsert: 250, occurrencesWithEvents: 0 }
    : {
        occurrencesPerTransaction: Number.POSITIVE_INFINITY,
        // About what one part of the parser's answers holds: a statement's array texts stay a few MB.
        occurrencesPerInsert: 5_000,
        occurrencesWithEvents: 5_000,
      };
}

export type StoreOptions = {
  /**
   * None of the objects is stored yet (the caller knows the connection's events, as a sync under its
   * lease does): there are no occurrences of theirs to remove first.
   */
  fresh?: boolean;
};

/**
 * Writes objects from the provider with their occurrences, replacing what was stored for them.
 * Occurrences of the resource's own bookings never block availability: the booking itself does.
 *
 * A group of objects is one statement: the events are upserted, their old occurrences removed and
 * the new ones inserted, every column sent as one array (`unnest`), so the statement has the same
 * text and a fixed number of parameters whatever the number of rows. Each transaction writes at most
 * `limits.occurrencesPerTransaction` occurrences, so a calendar of long series never holds the
 * embedded database for long. A series with more is written over several: its event row is kept
 * without an etag until the last, so a sync that stops in between reads it again next time instead
 * of trusting half of it.
 */
export async function storeObjects(
  db: Db,
  connection: ConnectionRow,
  objects: readonly StoredObject[],
  now: number,
  limits: StorageLimits = storageLimits('postgres'),
  options: StoreOptions = {},
): Promise<void> {
  const perTransaction = limits.occurrencesPerTransaction;
  for (const batch of storageBatches(objects, perTransaction)) {
    const [first] = batch;
    const spills = batch.length === 1 && first !== undefined && occurrenceCount(first) > perTransaction;
    const own = await ownObjects(db, connection, batch);
    const occurrences = occurrenceColumns(connection, batch, own);
    const inFirst = Math.min(occurrences.count, perTransaction, limits.occurrencesWithEvents);
    const write = async (trx: Db): Promise<string[]> => {
      const eventIds = await upsertWithOccurrences(trx, connection, batch, now, {
        spills,
        fresh: options.fresh ?? false,
        occurrences: occurrences.slice(0, inFirst),
      });
      const untilCommit = Math.min(occurrences.count, perTransaction);
      await insertOccurrences(trx, connection, occurrences.slice(inFirst, untilCommit), eventIds, limits);
      return eventIds;
    };
    // One statement is atomic by itself; more need a transaction around them.
    const alone = inFirst === Math.min(occurrences.count, perTransaction);
    const eventIds = alone ? await write(db) : await db.transaction().execute(write);
    for (let at = perTransaction; at < occurrences.count; at += perTransaction) {
      const last = at + perTransaction >= occurrences.count;
      await db.transaction().execute(async (trx) => {
        await insertOccurrences(
          trx,
          connection,
          occurrences.slice(at, at + perTransaction),
          eventIds,
          limits,
        );
        if (last && eventIds[0] && first) {
          await trx
            .updateTable('calendar_events')
            .set({ etag: first.etag })
            .where('event_id', '=', eventIds[0])
            .execute();
        }
      });
    }
  }
}

/** Occurrence rows as columns; `object` is each row's index in the batch. */
class OccurrenceColumns {
  object: number[] = [];
  startsAt: number[] = [];
  endsAt: number[] = [];
  allDay: boolean[] = [];
  blocks: boolean[] = [];
  status: string[] = [];
  transparency: string[] = [];
  title: (string | null)[] = [];
  recurrenceId: (string | null)[] = [];

  get count(): number {
    return this.object.length;
  }

  push(object: number, occurrence: Occurrence, blocksAtAll: boolean): void {
    this.object.push(object);
    this.startsAt.push(occurrence.startsAt);
    this.endsAt.push(occurrence.endsAt);
    this.allDay.push(occurrence.allDay);
    this.blocks.push(
      blocksAtAll &&
        occurrence.endsAt > occurrence.startsAt &&
        occurrence.status !== 'cancelled' &&
        occurrence.transparency === 'opaque',
    );
    this.status.push(occurrence.status);
    this.transparency.push(occurrence.transparency);
    this.title.push(occurrence.title);
    this.recurrenceId.push(occurrence.recurrenceId);
  }

  slice(from: number, to: number): OccurrenceColumns {
    if (from === 0 && to >= this.count) return this;
    const part = new OccurrenceColumns();
    part.object = this.object.slice(from, to);
    part.startsAt = this.startsAt.slice(from, to);
    part.endsAt = this.endsAt.slice(from, to);
    part.allDay = this.allDay.slice(from, to);
    part.blocks = this.blocks.slice(from, to);
    part.status = this.status.slice(from, to);
    part.transparency = this.transparency.slice(from, to);
    part.title = this.title.slice(from, to);
    part.recurrenceId = this.recurrenceId.slice(from, to);
    return part;
  }

  /** The columns as array literals in the order `occurrenceRows` reads them, events by id where given. */
  parameters(eventIds?: readonly string[]): string[] {
    const first = eventIds ? this.object.map((index) => eventIds[index] ?? null) : this.object;
    return [
      plainArray(first),
      plainArray(this.startsAt),
      plainArray(this.endsAt),
      plainArray(this.allDay),
      plainArray(this.blocks),
      textArray(this.status),
      textArray(this.transparency),
      textArray(this.title),
      textArray(this.recurrenceId),
    ];
  }
}

/*
 * Columns go to the database as array literals built here: pg would quote and escape every element
 * of a JavaScript array one by one, which for tens of thousands of numbers costs more than the insert.
 */

/** Numbers, booleans and UUIDs, which need no quoting. */
function plainArray(values: readonly (number | boolean | string | null)[]): string {
  return `{${values.map((value) => (value === null ? 'NULL' : String(value))).join(',')}}`;
}

function textArray(values: readonly (string | null)[]): string {
  return `{${values.map((value) => (value === null ? 'NULL' : `"${value.replace(/["\\]/g, '\\$&')}"`)).join(',')}}`;
}

function occurrenceColumns(
  connection: ConnectionRow,
  batch: readonly StoredObject[],
  own: (object: StoredObject) => boolean,
): OccurrenceColumns {
  const columns = new OccurrenceColumns();
  batch.forEach((object, index) => {
    if (!object.result.ok) return;
    const blocksAtAll = connection.blocks_availability && !own(object);
    for (const occurrence of object.result.occurrences) columns.push(index, occurrence, blocksAtAll);
  });
  return columns;
}

/**
 * The occurrence columns as rows, `o.key` naming the event (an object index or an event id). A
 * range is half-open like bookings; an instant event (no duration) is kept as a point so it can be
 * listed.
 */
function occurrenceRows(params: readonly string[], keyType: 'int' | 'uuid') {
  const [key, startsAt, endsAt, allDay, blocks, status, transparency, title, recurrenceId] = params;
  return sql`unnest(${sql.val(key)}::${sql.raw(keyType)}[], ${sql.val(startsAt)}::float8[],
      ${sql.val(endsAt)}::float8[], ${sql.val(allDay)}::bool[], ${sql.val(blocks)}::bool[],
      ${sql.val(status)}::text[], ${sql.val(transparency)}::text[], ${sql.val(title)}::text[],
      ${sql.val(recurrenceId)}::text[])
    as o(key, starts_ms, ends_ms, all_day, blocks, status, transparency, title, recurrence_id)`;
}

const OCCURRENCE_COLUMNS = sql.raw(
  'event_id, connection_id, resource_id, during, all_day, blocks, status, transparency, title, recurrence_id',
);

function occurrenceValues(connection: ConnectionRow, eventId: ReturnType<typeof sql.ref>) {
  return sql`${eventId}, ${connection.connection_id}::uuid, ${connection.resource_id}::uuid,
    case when o.ends_ms > o.starts_ms
      then tstzrange(to_timestamp(o.starts_ms / 1000), to_timestamp(o.ends_ms / 1000), '[)')
      else tstzrange(to_timestamp(o.starts_ms / 1000), to_timestamp(o.starts_ms / 1000), '[]') end,
    o.all_day, o.blocks, o.status, o.transparency, o.title, o.recurrence_id`;
}

/**
 * One statement: the batch's events upserted, their old occurrences removed (unless `fresh`), and
 * the given occurrences inserted. Returns the event ids in the order of the batch.
 */
async function upsertWithOccurrences(
  db: Db,
  connection: ConnectionRow,
  batch: readonly StoredObject[],
  now: number,
  options: { spills: boolean; fresh: boolean; occurrences: OccurrenceColumns },
): Promise<string[]> {
  const text = (pick: (object: StoredObject) => string | null) => sql.val(textArray(batch.map(pick)));
  const plain = (pick: (object: StoredObject) => string | number | boolean | null) =>
    sql.val(plainArray(batch.map(pick)));
  const summary = (object: StoredObject) => (object.result.ok ? object.result.summary : null);
  const cleared = options.fresh
    ? sql``
    : sql`, cleared as (delete from calendar_occurrences where event_id in (select event_id from events))`;
  // Committed without waiting for the disk: the sync's last write (its cursor) waits, and with it
  // everything written before it, so a crash loses nothing that a sync would count as stored.
  const result = await sql<{ event_id: string; at: string | number }>`
    with input as (
      select * from unnest(
        ${text((o) => o.remoteId)}::text[],
        ${text((o) => (options.spills ? null : o.etag))}::text[],
        ${text((o) => summary(o)?.uid ?? null)}::text[],
        ${text((o) => withoutNul(o.ics))}::text[],
        ${plain((o) => uuidOrNull(summary(o)?.bookingId ?? null))}::uuid[],
        ${plain((o) => summary(o)?.recurring ?? false)}::bool[],
        ${text((o) => summary(o)?.title ?? null)}::text[],
        ${text((o) => (o.result.ok ? null : withoutNul(o.result.error)))}::text[],
        ${text(readWarning)}::text[],
        ${plain((o) => (o.result.ok ? (o.result.span?.from ?? null) : null))}::float8[],
        ${plain((o) => (o.result.ok ? (o.result.span?.until ?? null) : null))}::float8[]
      ) with ordinality as i(remote_id, etag, uid, ics, booking_id, recurring, title, parse_error,
        read_warning, from_ms, until_ms, at)
    ), events as (
      insert into calendar_events (connection_id, organization_id, remote_id, etag, uid, ics, booking_id,
        recurring, title, parse_error, read_warning, series_from, series_until, updated_at)
      select ${connection.connection_id}::uuid, ${connection.organization_id}::uuid, remote_id, etag, uid,
        ics, booking_id, recurring, title, parse_error, read_warning, to_timestamp(from_ms / 1000),
        to_timestamp(until_ms / 1000), ${new Date(now)}::timestamptz
      from input
      on conflict (connection_id, remote_id) do update set etag = excluded.etag, uid = excluded.uid,
        ics = excluded.ics, booking_id = excluded.booking_id, recurring = excluded.recurring,
        title = excluded.title, parse_error = excluded.parse_error,
        read_warning = excluded.read_warning, series_from = excluded.series_from,
        series_until = excluded.series_until, updated_at = excluded.updated_at
      returning event_id, remote_id
    ), ids as (
      select events.event_id, input.at from events join input using (remote_id)
    )${cleared}, written as (
      insert into calendar_occurrences (${OCCURRENCE_COLUMNS})
      select ${occurrenceValues(connection, sql.ref('ids.event_id'))}
      from ${occurrenceRows(options.occurrences.parameters(), 'int')} join ids on ids.at = o.key + 1
    )
    select event_id, at from ids, (select set_config('synchronous_commit', 'off', true)) as unhurried`.execute(
    db,
  );
  const ids: string[] = [];
  for (const row of result.rows) ids[Number(row.at) - 1] = row.event_id;
  return ids;
}

/** Occurrences of events already written, in statements of `limits.occurrencesPerInsert`. */
async function insertOccurrences(
  db: Db,
  connection: ConnectionRow,
  occurrences: OccurrenceColumns,
  eventIds: readonly string[],
  limits: StorageLimits,
): Promise<void> {
  const perInsert = limits.occurrencesPerInsert;
  for (let at = 0; at < occurrences.count; at += perInsert) {
    const part = occurrences.slice(at, at + perInsert);
    await sql`insert into calendar_occurrences (${OCCURRENCE_COLUMNS})
      select ${occurrenceValues(connection, sql.ref('o.key'))}
      from ${occurrenceRows(part.parameters(eventIds), 'uuid')}`.execute(db);
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

const SCHED_UID = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})@sched$/i;

/**
 * Whether an object of this batch is one Sched wrote for the connection's own resource: the event of
 * one of its bookings (X-SCHED-BOOKING-ID, UID `<booking id>@sched`), or the recurring event of one
 * of its series (UID `<series id>@sched`, whichever occurrence the master names).
 */
async function ownObjects(
  db: Db,
  connection: ConnectionRow,
  batch: readonly StoredObject[],
): Promise<(object: StoredObject) => boolean> {
  const ids = new Set<string>();
  const seriesIds = new Set<string>();
  for (const object of batch) {
    if (!object.result.ok) continue;
    const bookingId = uuidOrNull(object.result.summary.bookingId);
    if (bookingId) ids.add(bookingId);
    const tagged = SCHED_UID.exec(object.result.summary.uid ?? '')?.[1]?.toLowerCase();
    if (tagged) seriesIds.add(tagged);
  }
  const bookings =
    ids.size === 0
      ? []
      : await db
          .selectFrom('bookings')
          .select('booking_id')
          .where('booking_id', 'in', [...ids])
          .where('organization_id', '=', connection.organization_id)
          .where(sql<boolean>`${connection.resource_id}::uuid = any(resource_ids)`)
          .execute();
  const series =
    seriesIds.size === 0
      ? []
      : await db
          .selectFrom('bookings')
          .select('series_id')
          .distinct()
          .where('series_id', 'in', [...seriesIds])
          .where('organization_id', '=', connection.organization_id)
          .where(sql<boolean>`${connection.resource_id}::uuid = any(resource_ids)`)
          .execute();
  const ownBookings = new Set(bookings.map((row) => row.booking_id));
  const ownSeries = new Set(series.flatMap((row) => (row.series_id ? [row.series_id] : [])));
  return (object) => {
    if (!object.result.ok) return false;
    const bookingId = uuidOrNull(object.result.summary.bookingId);
    if (bookingId && ownBookings.has(bookingId)) return true;
    const tagged = SCHED_UID.exec(object.result.summary.uid ?? '')?.[1]?.toLowerCase();
    return tagged !== undefined && ownSeries.has(tagged);
  };
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
