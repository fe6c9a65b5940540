import { sql } from 'kysely';
import { checkBookable, formatInstant, type Interval, overlaps } from '../../domain/index.js';
import type { Db } from '../../storage/database.js';
import { loadCalendarBusy } from '../../calendar/busy.js';
import { type BookableResource, type BookedInterval, loadBookedIntervals } from '../bookable-resources.js';
import { type BookingConflict, ErrorCode, SchedError, validationError } from '../errors.js';

const MS_PER_MINUTE = 60_000;
/** No single booking spans more than this; it bounds the conflict queries a request can cause. */
export const MAX_BOOKING_DAYS = 31;

export function checkInterval(interval: Interval): void {
  if (interval.end <= interval.start) throw validationError('end_time', 'must be after start_time');
  if (interval.end - interval.start > MAX_BOOKING_DAYS * 24 * 60 * MS_PER_MINUTE) {
    throw validationError('end_time', `a booking may last at most ${MAX_BOOKING_DAYS} days`);
  }
}

export function hasBuffers(resource: BookableResource): boolean {
  return resource.schedule.bufferBeforeMinutes > 0 || resource.schedule.bufferAfterMinutes > 0;
}

/** Pending and confirmed bookings and live holds that could conflict with the request once buffers widen them. */
function loadNearbyBookings(
  db: Db,
  resources: readonly BookableResource[],
  requested: Interval,
  now: number,
  excludeBookingId?: string,
): Promise<Map<string, BookedInterval[]>> {
  const widest = Math.max(
    0,
    ...resources.map((r) => Math.max(r.schedule.bufferBeforeMinutes, r.schedule.bufferAfterMinutes)),
  );
  const range = {
    start: requested.start - widest * MS_PER_MINUTE,
    end: requested.end + widest * MS_PER_MINUTE,
  };
  return loadBookedIntervals(
    db,
    resources.map((r) => r.resourceId),
    range,
    now,
    excludeBookingId,
  );
}

/**
 * Why the interval cannot be booked on these resources, given their nearby bookings; [] when it can.
 * With `ignoreAvailability` only other bookings count, and then without buffers: the rule the
 * database enforces anyway.
 */
function conflictsWith(
  resources: readonly BookableResource[],
  booked: ReadonlyMap<string, readonly BookedInterval[]>,
  calendarBusy: ReadonlyMap<string, readonly Interval[]>,
  requested: Interval,
  now: number,
  ignoreAvailability: boolean,
): BookingConflict[] {
  const conflicts: BookingConflict[] = [];
  const push = (resourceId: string, kind: BookingConflict['kind'], interval: Interval) =>
    conflicts.push({
      resource_id: resourceId,
      kind,
      start_time: formatInstant(interval.start),
      end_time: formatInstant(interval.end),
    });
  for (const resource of resources) {
    const bookings = booked.get(resource.resourceId) ?? [];
    if (ignoreAvailability) {
      for (const booking of bookings) {
        if (overlaps(booking, requested)) push(resource.resourceId, 'booking', booking);
      }
      continue;
    }
    const checks = checkBookable(
      {
        resourceId: resource.resourceId,
        schedule: resource.schedule,
        bookings,
        calendarBusy: calendarBusy.get(resource.resourceId) ?? [],
      },
      requested,
      now,
    );
    for (const check of checks) push(resource.resourceId, check.kind, check);
  }
  return conflicts;
}

export async function findConflicts(
  db: Db,
  resources: readonly BookableResource[],
  requested: Interval,
  now: number,
  ignoreAvailability: boolean,
  excludeBookingId?: string,
): Promise<BookingConflict[]> {
  const [booked, calendarBusy] = await Promise.all([
    loadNearbyBookings(db, resources, requested, now, excludeBookingId),
    ignoreAvailability ? new Map<string, Interval[]>() : loadCalendarBusy(db, resources, requested),
  ]);
  return conflictsWith(resources, booked, calendarBusy, requested, now, ignoreAvailability);
}

/**
 * Where no resource has buffers, overlap with another booking is exactly what the exclusion
 * constraint refuses, so reading the bookings first would only repeat its work on every request.
 * They are read when something else is wrong already, so the 409 lists every conflict at once.
 */
export async function refuseUnlessBookable(
  db: Db,
  resources: readonly BookableResource[],
  requested: Interval,
  now: number,
  ignoreAvailability: boolean,
): Promise<void> {
  const calendarBusy = ignoreAvailability
    ? new Map<string, Interval[]>()
    : await loadCalendarBusy(db, resources, requested);
  if (conflictsWith(resources, new Map(), calendarBusy, requested, now, ignoreAvailability).length === 0)
    return;
  throw slotUnavailable(await findConflicts(db, resources, requested, now, ignoreAvailability));
}

export function slotUnavailable(conflicts: BookingConflict[]): SchedError {
  return new SchedError(ErrorCode.SLOT_UNAVAILABLE, 'the requested time is not available', { conflicts });
}

/**
 * Buffers are checked by the application, not by the exclusion constraint (which sees raw times), so
 * two requests a few minutes apart could both pass. A per-resource advisory lock, taken only where a
 * buffer exists, makes the check and the insert one step for that resource.
 */
export async function lockBufferedResources(db: Db, resources: readonly BookableResource[]): Promise<void> {
  await lockResources(
    db,
    resources.filter(hasBuffers).map((r) => r.resourceId),
  );
}

/** The same per-resource advisory locks, for every resource named, in the one order. */
export async function lockResources(db: Db, resourceIds: readonly string[]): Promise<void> {
  for (const resourceId of lockOrder(resourceIds)) {
    await sql`select pg_advisory_xact_lock(hashtextextended(${resourceId}, 0))`.execute(db);
  }
}

/** One order for every transaction, so two multi-resource bookings never wait on each other crosswise. */
export function lockOrder(resourceIds: readonly string[]): string[] {
  return [...resourceIds].sort();
}
