import type { OutgoingSeries } from '../ical/render-series.js';
import { calendarStatus, type Db } from '../storage/database.js';

/**
 * Recurring bookings as a resource's calendar shows them: each series with every occurrence it ever
 * had, so the rule's instances that are not this resource's live bookings (cancelled, rejected, moved
 * to another resource) can be excluded. Series of another organization are not read.
 */
export async function loadSeriesForResource(
  db: Db,
  scope: { resource_id: string; organization_id: string },
  seriesIds: readonly string[],
): Promise<OutgoingSeries[]> {
  if (seriesIds.length === 0) return [];
  const [seriesRows, bookingRows] = await Promise.all([
    db
      .selectFrom('booking_series')
      .selectAll()
      .where('series_id', 'in', seriesIds)
      .where('organization_id', '=', scope.organization_id)
      .orderBy('created_at')
      .orderBy('series_id')
      .execute(),
    db
      .selectFrom('bookings')
      .select([
        'booking_id',
        'series_id',
        'recurrence_id',
        'status',
        'resource_ids',
        'start_time',
        'end_time',
        'title',
        'description',
        'updated_at',
      ])
      .where('series_id', 'in', seriesIds)
      .where('organization_id', '=', scope.organization_id)
      .orderBy('recurrence_id')
      .execute(),
  ]);
  return seriesRows.map((series) => ({
    uid: `${series.series_id}@sched`,
    seriesId: series.series_id,
    timeZone: series.time_zone,
    rule: {
      frequency: series.recurrence.frequency,
      interval: series.recurrence.interval,
      count: series.recurrence.count,
      until: series.recurrence.until === null ? null : Date.parse(series.recurrence.until),
      byWeekday: series.recurrence.by_weekday,
    },
    occurrences: bookingRows
      .filter((row) => row.series_id === series.series_id && row.recurrence_id !== null)
      .map((row) => ({
        bookingId: row.booking_id,
        recurrenceId: row.recurrence_id!.getTime(),
        startsAt: row.start_time.getTime(),
        endsAt: row.end_time.getTime(),
        title: row.title,
        description: row.description,
        status: row.resource_ids.includes(scope.resource_id) ? calendarStatus(row.status) : 'cancelled',
        updatedAt: row.updated_at.getTime(),
      })),
  }));
}
