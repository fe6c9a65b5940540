import { sql } from 'kysely';
import type { Interval } from '../../domain/index.js';
import type { BookingRow, Db, NewAuditEntry } from '../../storage/database.js';
import { isExclusionViolation, isRetryableConflict } from '../../storage/errors.js';
import type { DatabaseKind } from '../../storage/open-database.js';
import { executePrepared, preparedStatement } from '../../storage/prepared.js';
import { eventWritesSql, type WebhookEventType } from '../webhook-events.js';
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
  deps: ServiceDeps & { databaseKind?: DatabaseKind | undefined },
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
      // An expired hold still has its rows until someone deletes them: that is no conflict.
      if (
        isExclusionViolation(error) &&
        attempt < MAX_WRITE_ATTEMPTS &&
        (await sweepExpiredHolds(deps.db, input.resource_ids, input, deps.clock())) > 0
      ) {
        continue;
      }
      const resources = await loadBookableResources(deps.db, actor, input.resource_ids, {
        kind: deps.databaseKind,
      });
      const conflicts = await findConflicts(deps.db, resources, input, deps.clock(), true, excludeBookingId);
      throw slotUnavailable(conflicts);
    }
  }
}

/** A half-open tstzrange literal, as booking_resources stores it. */
function rangeLiteral(interval: Interval): string {
  return `[${new Date(interval.start).toISOString()},${new Date(interval.end).toISOString()})`;
}

/**
 * Deletes the expired holds that overlap the interval on these resources (their rows go with them), so
 * the exclusion constraint, which cannot know the time, never refuses a write because of one.
 * Expiry is by the service clock. Returns how many holds went.
 */
export async function sweepExpiredHolds(
  db: Db,
  resourceIds: readonly string[],
  interval: Interval,
  now: number,
): Promise<number> {
  const result = await sql`
    delete from holds where expires_at <= ${new Date(now)} and hold_id in (
      select hold_id from booking_resources
      where status = 'held' and resource_id = any(${[...resourceIds]}::uuid[])
        and during && tstzrange(${new Date(interval.start)}, ${new Date(interval.end)}, '[)')
        and expires_at <= ${new Date(now)})`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}

/** Who owns a booking_resources row: a booking (pending or confirmed), or a hold until it expires. */
export type ResourceRowOwner =
  | { booking_id: string; status: 'pending' | 'confirmed'; booked_at: Date }
  | { hold_id: string; status: 'held'; expires_at: Date };

/** A row per resource for the booking or hold, inserted in the one lock order. */
export async function insertResourceRows(
  db: Db,
  actor: Actor,
  owner: ResourceRowOwner,
  resourceIds: readonly string[],
  interval: Interval,
) {
  const during = rangeLiteral(interval);
  await db
    .insertInto('booking_resources')
    .values(
      lockOrder(resourceIds).map((resourceId) => ({
        ...owner,
        resource_id: resourceId,
        organization_id: actor.organizationId,
        during,
      })),
    )
    .execute();
}

export function insertBookingResources(
  db: Db,
  actor: Actor,
  booking: { booking_id: string; created_at: Date },
  resourceIds: string[],
  interval: Interval,
  status: 'pending' | 'confirmed' = 'confirmed',
) {
  return insertResourceRows(
    db,
    actor,
    { booking_id: booking.booking_id, status, booked_at: booking.created_at },
    resourceIds,
    interval,
  );
}

const OUTBOX = eventWritesSql({ organization: '$18', type: '$19', payload: '$20', at: '$21' });

/**
 * The booking, a row per booked resource, its calendar outbox rows, its audit entry and its webhook
 * event in one statement: one round trip, atomic without a transaction of its own. The exclusion
 * constraint still refuses an overlap (23P01). Prepared on PostgreSQL: the text never changes, so each
 * connection parses it once.
 */
const INSERT_BOOKING = preparedStatement(
  'sched_insert_booking',
  `
    with booking as (
      insert into bookings (booking_id, organization_id, status, resource_ids, start_time, end_time, title,
        description, attendees, metadata, created_at, updated_at)
      values ($1::uuid, $2::uuid, $23::text, $3::uuid[], $4::timestamptz, $5::timestamptz, $6::text,
        $7::text, $8::jsonb, $9::jsonb, $10::timestamptz, $11::timestamptz)
    ), booked as (
      insert into booking_resources (booking_id, resource_id, organization_id, during, status, booked_at)
      select $1::uuid, resource_id, $2::uuid, tstzrange($4::timestamptz, $5::timestamptz, '[)'), $23::text,
        $10::timestamptz
      from unnest($12::uuid[]) as ids(resource_id)
    ), linked as (
      insert into booking_calendar_links (booking_id, connection_id, organization_id)
      select $1::uuid, connection_id, organization_id from calendar_connections
      where resource_id = any($3::uuid[]) and direction <> 'pull'
    ), audited as (
      insert into audit_log (organization_id, actor, action, target_type, target_id, details)
      values ($13::uuid, $14::text, $15::text, $16::text, $17::text, $22::jsonb)
    ), ${OUTBOX.ctes}
    ${OUTBOX.insert}`,
);

/** A webhook event as the booking's statement records it. */
export type BookingEvent = { organizationId: string; type: WebhookEventType; payload: string; at: Date };

export async function insertBooking(
  db: Db,
  kind: DatabaseKind | undefined,
  row: BookingRow,
  audit: NewAuditEntry,
  event: BookingEvent,
): Promise<void> {
  await executePrepared(db, kind, INSERT_BOOKING, [
    row.booking_id,
    row.organization_id,
    row.resource_ids,
    row.start_time,
    row.end_time,
    row.title,
    row.description,
    JSON.stringify(row.attendees),
    JSON.stringify(row.metadata),
    row.created_at,
    row.updated_at,
    lockOrder(row.resource_ids),
    audit.organization_id,
    audit.actor,
    audit.action,
    audit.target_type,
    audit.target_id,
    event.organizationId,
    event.type,
    event.payload,
    event.at,
    audit.details,
    row.status,
  ]);
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
