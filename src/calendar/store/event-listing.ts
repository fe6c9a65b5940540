import { sql } from 'kysely';
import { formatInstant, type Interval } from '../../domain/index.js';
import type { CalendarProviderName, Db } from '../../storage/database.js';
import { expandOnDemand, outsideStoredSpan, reachingAny } from '../busy.js';
import { findConnection } from './connections.js';
import type { Actor } from '../../services/context.js';
import { validationError } from '../../services/errors.js';

/** The longest window one listing expands. */
export const MAX_EVENTS_WINDOW_DAYS = 366;
/** The most occurrences one listing returns; narrow the window to see past it. */
export const MAX_EVENTS_PER_LISTING = 5000;

export type CalendarEventView = {
  /** For an occurrence of a series: `<series id>_<original start>`, stable across syncs. */
  event_id: string;
  start_time: string;
  end_time: string;
  title: string | null;
  all_day: boolean;
  status: string;
  transparency: string;
  recurring_event_id: string | null;
  booking_id: string | null;
  updated_at: string;
};

type OccurrenceRow = {
  event_id: string;
  start_ms: number;
  end_ms: number;
  title: string | null;
  all_day: boolean;
  status: string;
  transparency: string;
  recurrence_id: string | null;
  recurring: boolean;
  booking_id: string | null;
  updated_at: Date;
};

function occurrenceId(eventId: string, recurrenceId: string | null, recurring: boolean): string {
  if (!recurring || recurrenceId === null) return eventId;
  return `${eventId}_${recurrenceId.replace(/[^0-9TZ]/g, '')}`;
}

function view(row: OccurrenceRow): CalendarEventView {
  return {
    event_id: occurrenceId(row.event_id, row.recurrence_id, row.recurring),
    start_time: formatInstant(row.start_ms),
    end_time: formatInstant(row.end_ms),
    title: row.title,
    all_day: row.all_day,
    status: row.status,
    transparency: row.transparency,
    recurring_event_id: row.recurring ? row.event_id : null,
    booking_id: row.booking_id,
    updated_at: row.updated_at.toISOString(),
  };
}

/** The connection's events within the window, recurring series expanded into occurrences. */
export async function listCalendarEvents(
  db: Db,
  actor: Actor,
  provider: CalendarProviderName,
  calendarId: string,
  window: Interval,
  resourceId?: string,
): Promise<{ events: CalendarEventView[] }> {
  if (window.end <= window.start) throw validationError('end', 'must be after start');
  if (window.end - window.start > MAX_EVENTS_WINDOW_DAYS * 86_400_000) {
    throw validationError('end', `the window may span at most ${MAX_EVENTS_WINDOW_DAYS} days`);
  }
  const connection = await findConnection(db, actor, provider, calendarId, resourceId);
  const stored = await sql<OccurrenceRow>`
    select o.event_id, (extract(epoch from lower(o.during)) * 1000)::float8 as start_ms,
      (extract(epoch from upper(o.during)) * 1000)::float8 as end_ms, o.title, o.all_day, o.status,
      o.transparency, o.recurrence_id, e.recurring, e.booking_id, e.updated_at
    from calendar_occurrences o join calendar_events e on e.event_id = o.event_id
    where o.connection_id = ${connection.connection_id} and lower(o.during) < ${new Date(window.end)}
      and o.during && tstzrange(${new Date(window.start)}, ${new Date(window.end)}, '[)')
    order by lower(o.during), o.event_id
    limit ${MAX_EVENTS_PER_LISTING}`.execute(db);
  const rows = [...stored.rows];
  const outside = outsideStoredSpan(connection, window);
  if (outside.length > 0) {
    const zone = await db
      .selectFrom('resources')
      .select('time_zone')
      .where('resource_id', '=', connection.resource_id)
      .executeTakeFirstOrThrow();
    const series = await db
      .selectFrom('calendar_events as e')
      .select(['e.event_id', 'e.ics', 'e.booking_id', 'e.updated_at'])
      .where('e.connection_id', '=', connection.connection_id)
      // As the index on spans is written, so that it serves the query whatever the plan.
      .where(sql<boolean>`e.recurring and e.parse_error is null`)
      .where(reachingAny(outside))
      .execute();
    for (const [event, occurrence] of expandOnDemand(series, outside, zone.time_zone)) {
      rows.push({
        event_id: event.event_id,
        start_ms: occurrence.startsAt,
        end_ms: occurrence.endsAt,
        title: occurrence.title,
        all_day: occurrence.allDay,
        status: occurrence.status,
        transparency: occurrence.transparency,
        recurrence_id: occurrence.recurrenceId,
        recurring: true,
        booking_id: event.booking_id,
        updated_at: event.updated_at,
      });
    }
    rows.sort((a, b) => a.start_ms - b.start_ms || a.event_id.localeCompare(b.event_id));
  }
  // An occurrence straddling the edge of the stored span is both stored and expanded on demand.
  const seen = new Set<string>();
  const unique = rows.filter((row) => {
    const key = `${row.event_id}|${row.start_ms}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { events: unique.slice(0, MAX_EVENTS_PER_LISTING).map(view) };
}
