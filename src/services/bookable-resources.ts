import { sql } from 'kysely';
import { defaultSchedule, type Interval, type Schedule } from '../domain/index.js';
import { BUSY_STATUSES, type Db } from '../storage/database.js';
import type { DatabaseKind } from '../storage/open-database.js';
import { executePrepared, preparedStatement } from '../storage/prepared.js';
import type { Actor } from './context.js';
import { resourceNotFound } from './resources.js';
import { type ScheduleFields, scheduleFromRow } from './schedules.js';

export type BookableResource = {
  resourceId: string;
  timeZone: string;
  schedule: Schedule;
  /** Whether a connected calendar can make it busy; without one, no calendar busy time is read. */
  hasBlockingCalendars: boolean;
};

type BookableRow = {
  id: string;
  resource_time_zone: string;
  has_blocking_calendars: boolean;
} & { [K in keyof ScheduleFields]: ScheduleFields[K] | null };

/**
 * Fixed text, so nothing is built per request, and prepared on PostgreSQL (parsed and planned once per
 * connection). The left join gives nulls where a resource has no schedule of its own.
 */
const SELECT_BOOKABLE = preparedStatement(
  'sched_select_bookable_resources',
  `select r.resource_id as id, r.time_zone as resource_time_zone, s.time_zone, s.weekly, s.overrides,
      s.buffer_before_minutes, s.buffer_after_minutes, s.minimum_notice_minutes, s.booking_horizon_days,
      exists (select 1 from calendar_connections c where c.resource_id = r.resource_id
        and c.blocks_availability and c.direction <> 'push') as has_blocking_calendars
    from resources r left join schedules s on s.resource_id = r.resource_id
    where r.resource_id = any($1::uuid[]) and r.organization_id = $2::uuid and r.deleted_at is null`,
);

function bookableFromRow(resourceId: string, row: BookableRow): BookableResource {
  const { time_zone, weekly, overrides, buffer_before_minutes, buffer_after_minutes } = row;
  const { minimum_notice_minutes, booking_horizon_days } = row;
  // Every schedule column is NOT NULL, so one null means the left join found no schedule.
  const schedule =
    time_zone === null ||
    weekly === null ||
    overrides === null ||
    buffer_before_minutes === null ||
    buffer_after_minutes === null ||
    minimum_notice_minutes === null ||
    booking_horizon_days === null
      ? defaultSchedule(row.resource_time_zone)
      : scheduleFromRow({
          time_zone,
          weekly,
          overrides,
          buffer_before_minutes,
          buffer_after_minutes,
          minimum_notice_minutes,
          booking_horizon_days,
        });
  return {
    resourceId,
    timeZone: row.resource_time_zone,
    schedule,
    hasBlockingCalendars: row.has_blocking_calendars,
  };
}

/**
 * The resources named in a request with their schedules, in the order given. One query for all of them;
 * an id that is unknown, deleted or of another organization is reported with its position in `field`.
 * With the database kind, the read goes as a prepared statement on PostgreSQL.
 */
export async function loadBookableResources(
  db: Db,
  actor: Actor,
  resourceIds: readonly string[],
  options: { field?: string; kind?: DatabaseKind | undefined } = {},
): Promise<BookableResource[]> {
  const { rows } = await executePrepared<BookableRow>(db, options.kind, SELECT_BOOKABLE, [
    resourceIds,
    actor.organizationId,
  ]);
  const byId = new Map(rows.map((row) => [row.id, row]));
  const field = options.field ?? 'resource_ids';
  return resourceIds.map((resourceId, index) => {
    const row = byId.get(resourceId);
    if (!row) throw resourceNotFound(resourceId, `${field}[${index}]`);
    return bookableFromRow(resourceId, row);
  });
}

export type BookedInterval = Interval & { bookingId: string };

/** The busy statuses as SQL literals, so the text matches the exclusion constraint's predicate. */
export const BUSY_STATUS_LIST = sql.join(BUSY_STATUSES.map((status) => sql.lit(status)));

/** A booking_resources row keeps its time: a pending or confirmed booking, or a hold not yet expired. */
export function blocksAt(now: number) {
  return sql<boolean>`(status in (${BUSY_STATUS_LIST}) or (status = 'held' and expires_at > ${new Date(now)}))`;
}

/**
 * Pending and confirmed bookings and live holds of these resources overlapping `range`, as epoch milliseconds per resource.
 * Reading epoch numbers instead of timestamps spares parsing a Date per row on large windows.
 */
export async function loadBookedIntervals(
  db: Db,
  resourceIds: readonly string[],
  range: Interval,
  now: number,
  excludeBookingId?: string,
): Promise<Map<string, BookedInterval[]>> {
  let select = db
    .selectFrom('booking_resources')
    .select([
      'resource_id',
      sql<string>`coalesce(booking_id, hold_id)`.as('booking_id'),
      sql<number>`(extract(epoch from lower(during)) * 1000)::float8`.as('start_ms'),
      sql<number>`(extract(epoch from upper(during)) * 1000)::float8`.as('end_ms'),
    ])
    .where('resource_id', 'in', resourceIds)
    .where(blocksAt(now))
    .where(sql<boolean>`during && tstzrange(${new Date(range.start)}, ${new Date(range.end)}, '[)')`);
  if (excludeBookingId) {
    select = select.where((eb) =>
      eb.or([eb('booking_id', 'is', null), eb('booking_id', '!=', excludeBookingId)]),
    );
  }
  const rows = await select.execute();
  const byResource = new Map<string, BookedInterval[]>(resourceIds.map((id) => [id, []]));
  for (const row of rows) {
    byResource
      .get(row.resource_id)
      ?.push({ start: row.start_ms, end: row.end_ms, bookingId: row.booking_id });
  }
  return byResource;
}
