import { sql } from 'kysely';
import type { Interval } from '../../domain/index.js';
import type { RemoteEvent } from '../port/provider.js';
import { expandObject, type ExpandResult, type Occurrence } from '../../ical/expand-object.js';
import type { ConnectionRow, Db } from '../../storage/database.js';

const DAY_MS = 86_400_000;
/** Occurrences of recurring series are kept for this span around now; other windows expand on demand. */
export const EXPANDED_PAST_MS = 31 * DAY_MS;
export const EXPANDED_FUTURE_MS = 400 * DAY_MS;
/** Re-expand every series once the stored span has less than this left ahead. */
export const REEXPAND_MARGIN_MS = 7 * DAY_MS;
/** A single event is looked for across this span, wide enough for any real calendar. */
const SINGLE_EVENT_WINDOW = { start: Date.UTC(1900, 0, 1), end: Date.UTC(2200, 0, 1) };
const BATCH = 200;
const OCCURRENCE_ROWS_PER_INSERT = 1000;

export function expansionWindow(now: number): Interval {
  return { start: now - EXPANDED_PAST_MS, end: now + EXPANDED_FUTURE_MS };
}

export type StoredObject = {
  remoteId: string;
  etag: string | null;
  ics: string;
  result: ExpandResult;
};

/** Parses and expands one object: recurring series within `window`, a single event wherever it is. */
export function expandForStorage(ics: string, window: Interval, zone: string): ExpandResult {
  const first = expandObject(ics, window, { floatingZone: zone });
  if (!first.ok || first.summary.recurring || first.occurrences.length > 0) return first;
  // A single event outside the window: its one occurrence is the master itself, no second parse.
  const master = first.summary.master;
  if (!master || master.startsAt < SINGLE_EVENT_WINDOW.start || master.startsAt >= SINGLE_EVENT_WINDOW.end) {
    return first;
  }
  const occurrence: Occurrence = {
    startsAt: master.startsAt,
    endsAt: master.endsAt,
    allDay: master.allDay,
    title: first.summary.title,
    status: master.status,
    transparency: master.transparency,
    recurrenceId: null,
  };
  return { ...first, occurrences: [occurrence] };
}

/**
 * Writes objects from the provider with their occurrences, replacing what was stored for them.
 * Occurrences of the resource's own bookings never block availability: the booking itself does.
 */
export async function storeObjects(
  db: Db,
  connection: ConnectionRow,
  objects: readonly StoredObject[],
  now: number,
): Promise<void> {
  for (let index = 0; index < objects.length; index += BATCH) {
    const batch = objects.slice(index, index + BATCH);
    await db.transaction().execute(async (trx) => {
      const own = await ownBookingIds(trx, connection, batch);
      const rows = await trx
        .insertInto('calendar_events')
        .values(
          batch.map((object) => ({
            connection_id: connection.connection_id,
            organization_id: connection.organization_id,
            remote_id: object.remoteId,
            etag: object.etag,
            uid: object.result.ok ? object.result.summary.uid : null,
            ics: object.ics,
            booking_id: object.result.ok ? uuidOrNull(object.result.summary.bookingId) : null,
            recurring: object.result.ok && object.result.summary.recurring,
            title: object.result.ok ? object.result.summary.title : null,
            parse_error: object.result.ok ? null : object.result.error,
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
      for (let at = 0; at < occurrenceRows.length; at += OCCURRENCE_ROWS_PER_INSERT) {
        await trx
          .insertInto('calendar_occurrences')
          .values(occurrenceRows.slice(at, at + OCCURRENCE_ROWS_PER_INSERT))
          .execute();
      }
    });
  }
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

/** Expands every stored recurring series of the connection again for the current window. */
export async function reexpandSeries(
  db: Db,
  connection: ConnectionRow,
  zone: string,
  window: Interval,
  now: number,
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
    await storeObjects(
      db,
      connection,
      rows.map((row) => withIcs(row.remote_id, row.etag, row.ics, expandForStorage(row.ics, window, zone))),
      now,
    );
    after = rows.at(-1)?.remote_id ?? after;
  }
}

export function withIcs(
  remoteId: string,
  etag: string | null,
  ics: string,
  result: ExpandResult,
): StoredObject {
  return { remoteId, etag, ics, result };
}

export function fromRemote(event: RemoteEvent, window: Interval, zone: string): StoredObject {
  return withIcs(event.remoteId, event.etag, event.ics, expandForStorage(event.ics, window, zone));
}
