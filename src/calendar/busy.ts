import { sql } from 'kysely';
import type { Interval } from '../domain/index.js';
import { DEFAULT_TIME_BUDGET_MS, expandObject, type Occurrence } from '../ical/expand-object.js';

/** What one request may spend expanding series outside the stored span, per connection. */
export const ON_DEMAND_BUDGET_MS = 2000;
import type { Db } from '../storage/database.js';
import type { BookableResource } from '../services/bookable-resources.js';

type BlockingConnection = {
  connection_id: string;
  resource_id: string;
  time_zone: string;
  expanded_from: Date | null;
  expanded_until: Date | null;
};

/** Set to false by a read that left part of the answer out (a series cut short by its budget). */
export type CalendarBusyRead = { complete: boolean };

/**
 * Busy time from connected calendars, per resource: stored occurrences that block, plus recurring
 * series expanded on demand where the window reaches past the span stored for their connection.
 * No query at all when none of the resources has a calendar that blocks availability.
 */
export async function loadCalendarBusy(
  db: Db,
  resources: readonly BookableResource[],
  range: Interval,
  read?: CalendarBusyRead,
): Promise<Map<string, Interval[]>> {
  const busy = new Map<string, Interval[]>(resources.map((resource) => [resource.resourceId, []]));
  const resourceIds = resources.filter((resource) => resource.hasBlockingCalendars).map((r) => r.resourceId);
  if (resourceIds.length === 0) return busy;
  const connections = (await db
    .selectFrom('calendar_connections as c')
    .innerJoin('resources as r', 'r.resource_id', 'c.resource_id')
    .select(['c.connection_id', 'c.resource_id', 'r.time_zone', 'c.expanded_from', 'c.expanded_until'])
    .where('c.resource_id', 'in', resourceIds)
    .where('c.blocks_availability', '=', true)
    .where('c.direction', '!=', 'push')
    .execute()) as BlockingConnection[];
  if (connections.length === 0) return busy;
  const rows = await db
    .selectFrom('calendar_occurrences')
    .select([
      'resource_id',
      sql<number>`(extract(epoch from lower(during)) * 1000)::float8`.as('start_ms'),
      sql<number>`(extract(epoch from upper(during)) * 1000)::float8`.as('end_ms'),
    ])
    .where('blocks', '=', true)
    .where('resource_id', 'in', resourceIds)
    // The index is on the start (migration 2026-12-04-0002); the overlap implies this bound.
    .where(sql<boolean>`lower(during) < ${new Date(range.end)}`)
    .where(sql<boolean>`during && tstzrange(${new Date(range.start)}, ${new Date(range.end)}, '[)')`)
    .execute();
  for (const row of rows) busy.get(row.resource_id)?.push({ start: row.start_ms, end: row.end_ms });
  for (const connection of connections) {
    const outside = outsideStoredSpan(connection, range);
    if (outside.length === 0) continue;
    const list = busy.get(connection.resource_id);
    for (const occurrence of await expandOutside(db, connection, outside, read)) list?.push(occurrence);
  }
  return busy;
}

/** The parts of `range` that the connection's stored occurrences of recurring series do not cover. */
export function outsideStoredSpan(
  connection: { expanded_from: Date | null; expanded_until: Date | null },
  range: Interval,
): Interval[] {
  const from = connection.expanded_from?.getTime();
  const until = connection.expanded_until?.getTime();
  if (from === undefined || until === undefined) return [];
  const parts: Interval[] = [];
  if (range.start < from) parts.push({ start: range.start, end: Math.min(range.end, from) });
  if (range.end > until) parts.push({ start: Math.max(range.start, until), end: range.end });
  return parts.filter((part) => part.end > part.start);
}

/** `<series id>@sched`: the UID of a recurring booking's event. */
const SERIES_UID = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}@sched$';

async function expandOutside(
  db: Db,
  connection: BlockingConnection,
  windows: readonly Interval[],
  read: CalendarBusyRead | undefined,
): Promise<Interval[]> {
  const series = await sql<{ ics: string }>`
    select e.ics from calendar_events e
    where e.connection_id = ${connection.connection_id} and e.recurring and e.parse_error is null
      and ${reachingAny(windows)}
      and not exists (select 1 from bookings b where b.booking_id = e.booking_id
        and ${connection.resource_id}::uuid = any(b.resource_ids))
      -- Nor one of its recurring bookings, written as one event under the series' UID.
      and not exists (select 1 from bookings b
        where b.series_id = (case when e.uid ~* ${SERIES_UID} then left(e.uid, 36)::uuid end)
          and ${connection.resource_id}::uuid = any(b.resource_ids))`.execute(db);
  const intervals: Interval[] = [];
  for (const [, occurrence] of expandOnDemand(series.rows, windows, connection.time_zone, read)) {
    if (occurrence.status === 'cancelled' || occurrence.transparency !== 'opaque') continue;
    intervals.push({ start: occurrence.startsAt, end: occurrence.endsAt });
  }
  return intervals;
}

/**
 * Series (calendar_events as `e`) whose stored span meets one of `windows`; a NULL end is unbounded,
 * as for every series stored before spans were, so those are still read. A point occurrence at a
 * window's start counts as in it, so the span's end may equal the start.
 */
export function reachingAny(windows: readonly Interval[]) {
  const each = windows.map(
    (window) => sql<boolean>`((e.series_until is null or e.series_until >= ${new Date(window.start)})
      and (e.series_from is null or e.series_from < ${new Date(window.end)}))`,
  );
  return each.length === 0 ? sql<boolean>`false` : sql<boolean>`(${sql.join(each, sql` or `)})`;
}

/**
 * Occurrences of stored series within `windows`, parsed again from their iCalendar text. One request
 * never spends more than ON_DEMAND_BUDGET_MS on series far from now, however many there are; one
 * that had to stop short, or a series cut short by its own budget, sets `read.complete` to false.
 */
export function* expandOnDemand<T extends { ics: string }>(
  series: readonly T[],
  windows: readonly Interval[],
  zone: string,
  read?: CalendarBusyRead,
): Generator<[T, Occurrence]> {
  const deadline = performance.now() + ON_DEMAND_BUDGET_MS;
  for (const item of series) {
    for (const window of windows) {
      const left = deadline - performance.now();
      if (left <= 0) {
        if (read) read.complete = false;
        return;
      }
      const result = expandObject(item.ics, window, {
        floatingZone: zone,
        timeBudgetMs: Math.min(DEFAULT_TIME_BUDGET_MS, left),
        span: false,
      });
      if (!result.ok) continue;
      if (result.truncated && read) read.complete = false;
      for (const occurrence of result.occurrences) yield [item, occurrence];
    }
  }
}
