import { sql } from 'kysely';
import type { Interval } from '../../domain/index.js';
import type { BookingRow, Db, NewAuditEntry } from '../../storage/database.js';
import { isExclusionViolation, isRetryableConflict } from '../../storage/errors.js';
import type { eventWrites } from '../webhook-events.js';
import { loadBookableResources } from '../bookable-resources.js';
import type { Actor, ServiceDeps } from '../context.js';
import { findConflicts, lockOrder, slotUnavailable } from './checks.js';

/**
 * Two transactions inserting conflicting ranges can each find the other's uncommitted index entry and
 * wait on it; PostgreSQL then aborts one with a deadlock (40P01). The write is simply run again: the
 * survivor has committed by then, so the retry sees it and ends in an ordinary 409.
 */
const MAX_WRITE_ATTEMPTS = 3;

/** Runs a booking write; a refusal by the exclusion constraint becomes the same 409 a check would give. */
export async function guardDoubleBooking<T>(
  deps: ServiceDeps,
  actor: Actor,
  input: { resource_ids: string[]; start: number; end: number },
  excludeBookingId: string | undefined,
  write: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (isRetryableConflict(error) && attempt < MAX_WRITE_ATTEMPTS) continue;
      if (!isExclusionViolation(error) && !isRetryableConflict(error)) throw error;
      const resources = await loadBookableResources(deps.db, actor, input.resource_ids);
      const conflicts = await findConflicts(deps.db, resources, input, deps.clock(), true, excludeBookingId);
      throw slotUnavailable(conflicts);
    }
  }
}

/** A half-open tstzrange literal, as booking_resources stores it. */
function rangeLiteral(interval: Interval): string {
  return `[${new Date(interval.start).toISOString()},${new Date(interval.end).toISOString()})`;
}

export async function insertBookingResources(
  db: Db,
  actor: Actor,
  bookingId: string,
  resourceIds: string[],
  interval: Interval,
) {
  const during = rangeLiteral(interval);
  await db
    .insertInto('booking_resources')
    .values(
      lockOrder(resourceIds).map((resourceId) => ({
        booking_id: bookingId,
        resource_id: resourceId,
        organization_id: actor.organizationId,
        during,
        status: 'confirmed' as const,
      })),
    )
    .execute();
}

/**
 * The booking, a row per booked resource, its calendar outbox rows, its audit entry and its webhook
 * event in one statement:
 * one round trip, atomic without a transaction of its own. The exclusion constraint still refuses an
 * overlap (23P01).
 */
export async function insertBooking(
  db: Db,
  row: BookingRow,
  interval: Interval,
  audit: NewAuditEntry,
  event: ReturnType<typeof eventWrites>,
): Promise<void> {
  await sql`
    with booking as (
      insert into bookings (booking_id, organization_id, status, resource_ids, start_time, end_time, title,
        description, attendees, metadata, created_at, updated_at)
      values (${row.booking_id}, ${row.organization_id}, 'confirmed', ${row.resource_ids}::uuid[], ${row.start_time},
        ${row.end_time}, ${row.title}, ${row.description}, ${JSON.stringify(row.attendees)}::jsonb,
        ${JSON.stringify(row.metadata)}::jsonb, ${row.created_at}, ${row.updated_at})
    ), booked as (
      insert into booking_resources (booking_id, resource_id, organization_id, during, status)
      select ${row.booking_id}::uuid, resource_id, ${row.organization_id}::uuid, ${rangeLiteral(interval)}::tstzrange,
        'confirmed'
      from unnest(${lockOrder(row.resource_ids)}::uuid[]) as ids(resource_id)
    ), linked as (
      insert into booking_calendar_links (booking_id, connection_id, organization_id)
      select ${row.booking_id}::uuid, connection_id, organization_id from calendar_connections
      where resource_id = any(${row.resource_ids}::uuid[]) and direction <> 'pull'
    ), audited as (
      insert into audit_log (organization_id, actor, action, target_type, target_id, details)
      values (${audit.organization_id}, ${audit.actor}, ${audit.action}, ${audit.target_type}, ${audit.target_id},
        ${audit.details}::jsonb)
    ), ${event.ctes}
    ${event.insert}
  `.execute(db);
}

/**
 * The transactional outbox of calendar sync: every connection of the booking's resources (before and
 * after a change) that Sched writes to is marked to receive the booking's current version.
 */
export async function queueCalendarPush(
  db: Db,
  bookingId: string,
  resourceIds: readonly string[],
): Promise<void> {
  await sql`
    insert into booking_calendar_links (booking_id, connection_id, organization_id)
    select ${bookingId}::uuid, connection_id, organization_id from calendar_connections
    where resource_id = any(${resourceIds}::uuid[]) and direction <> 'pull'
    on conflict (booking_id, connection_id) do update set push_pending = true, push_attempts = 0`.execute(db);
}
