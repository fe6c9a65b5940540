import { sql } from 'kysely';
import type { Interval } from '../../domain/index.js';
import type { RemoteEvent } from '../port/provider.js';
import {
  DEFAULT_TIME_BUDGET_MS,
  expandObject,
  MAX_OCCURRENCES_PER_SERIES,
  type ExpandResult,
  type Occurrence,
} from '../../ical/expand-object.js';
import type { ConnectionRow, Db, SyncWarnings } from '../../storage/database.js';

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
export function expandForStorage(
  ics: string,
  window: Interval,
  zone: string,
  limits: { maxOccurrences?: number; timeBudgetMs?: number } = {},
): ExpandResult {
  const first = expandObject(ics, window, { floatingZone: zone, ...limits });
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
            ics: withoutNul(object.ics),
            booking_id: object.result.ok ? uuidOrNull(object.result.summary.bookingId) : null,
            recurring: object.result.ok && object.result.summary.recurring,
            title: object.result.ok ? object.result.summary.title : null,
            parse_error: object.result.ok ? null : withoutNul(object.result.error),
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

/** PostgreSQL stores no text holding NUL; no calendar means anything by one. */
function withoutNul(text: string): string {
  return text.includes('\0') ? text.replace(/\0/g, '') : text;
}

/** How many unreadable events a connection names; the count covers them all. */
export const WARNINGS_SHOWN = 50;

/** The stored events of a connection that could not be read, with their UID and why. */
export async function unreadableEvents(db: Db, connectionId: string): Promise<SyncWarnings> {
  const base = db
    .selectFrom('calendar_events')
    .where('connection_id', '=', connectionId)
    .where('parse_error', 'is not', null);
  const rows = await base
    .select(['uid', 'remote_id', 'parse_error'])
    .orderBy('remote_id')
    .limit(WARNINGS_SHOWN)
    .execute();
  const items = rows.map((row) => ({ uid: row.uid ?? row.remote_id, reason: row.parse_error ?? '' }));
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

/** Expands every stored recurring series of the connection again for the current window. */
export async function reexpandSeries(
  db: Db,
  connection: ConnectionRow,
  zone: string,
  window: Interval,
  now: number,
  budget: CalendarBudget = calendarBudget(),
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
    await storeObjects(db, connection, expandWithinBudget(events, window, zone, budget), now);
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

/** What one sync may spend on a calendar as a whole, on top of the limits per object. */
export const CALENDAR_LIMITS = {
  /** Occurrences stored per sync of a connection. */
  occurrences: 200_000,
  /** Time spent parsing and expanding, in ms. */
  expandMs: 10_000,
  /** Objects read. */
  objects: 50_000,
  /** iCalendar text read, in UTF-16 code units (about bytes for the ASCII of real calendars). */
  chars: 64 * 1024 * 1024,
};

export type CalendarLimits = typeof CALENDAR_LIMITS;

/** The part of the calendar limits a sync has left, and what was left out for want of it. */
export type CalendarBudget = {
  occurrences: number;
  expandMs: number;
  objects: number;
  chars: number;
  readonly limits: CalendarLimits;
  /** Objects left out whole (time, object or size budget spent); read again on a later sync. */
  skipped: number;
  /** Occurrences not stored because the occurrence budget was spent. */
  occurrencesCut: boolean;
};

export function calendarBudget(limits: CalendarLimits = CALENDAR_LIMITS): CalendarBudget {
  return { ...limits, limits, skipped: 0, occurrencesCut: false };
}

/**
 * Parses and expands the objects of a sync within the budget: once occurrences run out, objects are
 * kept with the occurrences that were left; once time, objects or text run out, the rest is left out
 * (and, not being stored, read again by a later sync).
 */
export function expandWithinBudget(
  events: readonly RemoteEvent[],
  window: Interval,
  zone: string,
  budget: CalendarBudget,
): StoredObject[] {
  const stored: StoredObject[] = [];
  for (const event of events) {
    if (budget.expandMs <= 0 || budget.objects <= 0 || budget.chars < event.ics.length) {
      budget.skipped++;
      continue;
    }
    budget.objects--;
    budget.chars -= event.ics.length;
    const started = performance.now();
    const result = expandObjectWithin(event.ics, window, zone, budget);
    budget.expandMs -= performance.now() - started;
    stored.push(withIcs(event.remoteId, event.etag, event.ics, result));
  }
  return stored;
}

function expandObjectWithin(
  ics: string,
  window: Interval,
  zone: string,
  budget: CalendarBudget,
): ExpandResult {
  const result = expandForStorage(ics, window, zone, {
    // The per-series count includes DTSTART seen twice (as itself and as the rule's first), so one more.
    maxOccurrences: Math.max(1, Math.min(MAX_OCCURRENCES_PER_SERIES, budget.occurrences + 1)),
    timeBudgetMs: Math.max(1, Math.min(DEFAULT_TIME_BUDGET_MS, budget.expandMs)),
  });
  if (!result.ok) return result;
  if (result.occurrences.length > budget.occurrences) {
    budget.occurrencesCut = true;
    const occurrences = result.occurrences.slice(0, Math.max(0, budget.occurrences));
    budget.occurrences = 0;
    return { ...result, occurrences, truncated: true };
  }
  budget.occurrences -= result.occurrences.length;
  if (budget.occurrences <= 0 && result.truncated) budget.occurrencesCut = true;
  return result;
}

/** What a sync that ran out of budget tells the user, or null when it did not. */
export function budgetWarning(budget: CalendarBudget): string | null {
  const parts: string[] = [];
  if (budget.occurrencesCut) {
    const n = budget.limits.occurrences;
    parts.push(
      `the calendar has more than ${n} occurrences in the stored span; only the first ${n} are used`,
    );
  }
  if (budget.skipped > 0) {
    parts.push(
      `${budget.skipped} event${budget.skipped === 1 ? ' was' : 's were'} not read because the calendar ` +
        `exceeds the limits of one synchronization (${budget.limits.expandMs / 1000} s of reading, ` +
        `${budget.limits.objects} events); they are read on a later synchronization`,
    );
  }
  return parts.length === 0 ? null : parts.join('; ');
}
