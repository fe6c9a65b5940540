import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { checkBookable, formatInstant, type Interval, overlaps } from '../domain/index.js';
import type { Attendee, BookingRow, Db, NewAuditEntry } from '../storage/database.js';
import { isExclusionViolation, isRetryableConflict } from '../storage/errors.js';
import { recordAudit } from './audit.js';
import { emitEvent, eventWrites } from './webhook-events.js';
import { loadCalendarBusy } from './calendar-busy.js';
import {
  type BookableResource,
  type BookedInterval,
  loadBookableResources,
  loadBookedIntervals,
} from './bookable-resources.js';
import type { Actor, ServiceDeps } from './context.js';
import { type BookingConflict, ErrorCode, SchedError, validationError } from './errors.js';
import { afterKey, finishPage, pageOf, timeKey } from './pagination.js';

const MS_PER_MINUTE = 60_000;
/** No single booking spans more than this; it bounds the conflict queries a request can cause. */
export const MAX_BOOKING_DAYS = 31;

export type BookingStatus = 'confirmed' | 'cancelled';

export type BookingView = {
  booking_id: string;
  status: BookingStatus;
  resource_ids: string[];
  start_time: string;
  end_time: string;
  title: string;
  description: string | null;
  attendees: Attendee[];
  metadata: Record<string, unknown>;
  cancel_reason: string | null;
  created_at: string;
  updated_at: string;
};

export function bookingView(row: BookingRow): BookingView {
  return {
    booking_id: row.booking_id,
    status: row.status,
    resource_ids: row.resource_ids,
    start_time: formatInstant(row.start_time.getTime()),
    end_time: formatInstant(row.end_time.getTime()),
    title: row.title,
    description: row.description,
    attendees: row.attendees,
    metadata: row.metadata,
    cancel_reason: row.cancel_reason,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

export type BookingInput = {
  resource_ids: string[];
  start: number;
  end: number;
  title: string;
  description?: string | null | undefined;
  attendees?: Attendee[] | undefined;
  metadata?: Record<string, unknown> | undefined;
  ignore_availability?: boolean | undefined;
};

function checkInterval(interval: Interval): void {
  if (interval.end <= interval.start) throw validationError('end_time', 'must be after start_time');
  if (interval.end - interval.start > MAX_BOOKING_DAYS * 24 * 60 * MS_PER_MINUTE) {
    throw validationError('end_time', `a booking may last at most ${MAX_BOOKING_DAYS} days`);
  }
}

function hasBuffers(resource: BookableResource): boolean {
  return resource.schedule.bufferBeforeMinutes > 0 || resource.schedule.bufferAfterMinutes > 0;
}

/** Confirmed bookings that could conflict with the request once buffers widen them. */
function loadNearbyBookings(
  db: Db,
  resources: readonly BookableResource[],
  requested: Interval,
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

async function findConflicts(
  db: Db,
  resources: readonly BookableResource[],
  requested: Interval,
  now: number,
  ignoreAvailability: boolean,
  excludeBookingId?: string,
): Promise<BookingConflict[]> {
  const [booked, calendarBusy] = await Promise.all([
    loadNearbyBookings(db, resources, requested, excludeBookingId),
    ignoreAvailability ? new Map<string, Interval[]>() : loadCalendarBusy(db, resources, requested),
  ]);
  return conflictsWith(resources, booked, calendarBusy, requested, now, ignoreAvailability);
}

/**
 * Where no resource has buffers, overlap with another booking is exactly what the exclusion
 * constraint refuses, so reading the bookings first would only repeat its work on every request.
 * They are read when something else is wrong already, so the 409 lists every conflict at once.
 */
async function refuseUnlessBookable(
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

function slotUnavailable(conflicts: BookingConflict[]): SchedError {
  return new SchedError(ErrorCode.SLOT_UNAVAILABLE, 'the requested time is not available', { conflicts });
}

/**
 * Buffers are checked by the application, not by the exclusion constraint (which sees raw times), so
 * two requests a few minutes apart could both pass. A per-resource advisory lock, taken only where a
 * buffer exists, makes the check and the insert one step for that resource.
 */
async function lockBufferedResources(db: Db, resources: readonly BookableResource[]): Promise<void> {
  for (const resourceId of lockOrder(resources.filter(hasBuffers).map((r) => r.resourceId))) {
    await sql`select pg_advisory_xact_lock(hashtextextended(${resourceId}, 0))`.execute(db);
  }
}

/**
 * Two transactions inserting conflicting ranges can each find the other's uncommitted index entry and
 * wait on it; PostgreSQL then aborts one with a deadlock (40P01). The write is simply run again: the
 * survivor has committed by then, so the retry sees it and ends in an ordinary 409.
 */
const MAX_WRITE_ATTEMPTS = 3;

/** Runs a booking write; a refusal by the exclusion constraint becomes the same 409 a check would give. */
async function guardDoubleBooking<T>(
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

/** One order for every transaction, so two multi-resource bookings never wait on each other crosswise. */
function lockOrder(resourceIds: readonly string[]): string[] {
  return [...resourceIds].sort();
}

async function insertBookingResources(
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
async function insertBooking(
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

export async function createBooking(
  deps: ServiceDeps,
  actor: Actor,
  input: BookingInput,
): Promise<BookingView> {
  const requested = { start: input.start, end: input.end };
  checkInterval(requested);
  const now = deps.clock();
  const ignoreAvailability = input.ignore_availability ?? false;
  const at = new Date(now);
  const row: BookingRow = {
    booking_id: randomUUID(),
    organization_id: actor.organizationId,
    status: 'confirmed',
    resource_ids: input.resource_ids,
    start_time: new Date(input.start),
    end_time: new Date(input.end),
    title: input.title,
    description: input.description ?? null,
    attendees: input.attendees ?? [],
    metadata: input.metadata ?? {},
    cancel_reason: null,
    created_at: at,
    updated_at: at,
  };
  const view = bookingView(row);
  const audit = {
    organization_id: actor.organizationId,
    actor: actor.label,
    action: 'booking.created',
    target_type: 'booking',
    target_id: row.booking_id,
    details: JSON.stringify({ booking: view, ignore_availability: ignoreAvailability }),
  };
  const event = eventWrites(actor.organizationId, 'booking.created', view, now);

  return guardDoubleBooking(deps, actor, input, undefined, async () => {
    const resources = await loadBookableResources(deps.db, actor, input.resource_ids);
    if (!resources.some(hasBuffers)) {
      await refuseUnlessBookable(deps.db, resources, requested, now, ignoreAvailability);
      await insertBooking(deps.db, row, requested, audit, event);
      return view;
    }
    return deps.db.transaction().execute(async (trx) => {
      await lockBufferedResources(trx, resources);
      const conflicts = await findConflicts(trx, resources, requested, now, ignoreAvailability);
      if (conflicts.length > 0) throw slotUnavailable(conflicts);
      await insertBooking(trx, row, requested, audit, event);
      return view;
    });
  });
}

async function findBooking(db: Db, actor: Actor, bookingId: string, forUpdate = false): Promise<BookingRow> {
  let select = db
    .selectFrom('bookings')
    .selectAll()
    .where('booking_id', '=', bookingId)
    .where('organization_id', '=', actor.organizationId);
  if (forUpdate) select = select.forUpdate();
  const row = await select.executeTakeFirst();
  if (!row) throw new SchedError(ErrorCode.BOOKING_NOT_FOUND, `no booking ${bookingId}`);
  return row;
}

export async function getBooking(db: Db, actor: Actor, bookingId: string): Promise<BookingView> {
  return bookingView(await findBooking(db, actor, bookingId));
}

export type BookingPatch = Partial<Omit<BookingInput, 'start' | 'end'>> & { start?: number; end?: number };

export async function updateBooking(
  deps: ServiceDeps,
  actor: Actor,
  bookingId: string,
  patch: BookingPatch,
): Promise<BookingView> {
  const current = await findBooking(deps.db, actor, bookingId);
  const requested = {
    start: patch.start ?? current.start_time.getTime(),
    end: patch.end ?? current.end_time.getTime(),
  };
  checkInterval(requested);
  const resourceIds = patch.resource_ids ?? current.resource_ids;
  const target = { resource_ids: resourceIds, ...requested };
  return guardDoubleBooking(deps, actor, target, bookingId, () =>
    deps.db.transaction().execute(async (trx) => {
      const before = await findBooking(trx, actor, bookingId, true);
      if (before.status === 'cancelled') {
        throw new SchedError(
          ErrorCode.BOOKING_CANCELLED,
          'a cancelled booking cannot be changed; book again instead',
        );
      }
      const moved =
        requested.start !== before.start_time.getTime() ||
        requested.end !== before.end_time.getTime() ||
        resourceIds.join() !== before.resource_ids.join();
      if (moved) {
        const resources = await loadBookableResources(trx, actor, resourceIds);
        await lockBufferedResources(trx, resources);
        const conflicts = await findConflicts(
          trx,
          resources,
          requested,
          deps.clock(),
          patch.ignore_availability ?? false,
          bookingId,
        );
        if (conflicts.length > 0) throw slotUnavailable(conflicts);
        await trx.deleteFrom('booking_resources').where('booking_id', '=', bookingId).execute();
        await insertBookingResources(trx, actor, bookingId, resourceIds, requested);
      }
      const row = await trx
        .updateTable('bookings')
        .set({
          resource_ids: resourceIds,
          start_time: new Date(requested.start),
          end_time: new Date(requested.end),
          ...(patch.title !== undefined ? { title: patch.title } : {}),
          ...(patch.description !== undefined ? { description: patch.description } : {}),
          ...(patch.attendees !== undefined ? { attendees: JSON.stringify(patch.attendees) } : {}),
          ...(patch.metadata !== undefined ? { metadata: JSON.stringify(patch.metadata) } : {}),
          updated_at: new Date(deps.clock()),
        })
        .where('booking_id', '=', bookingId)
        .returningAll()
        .executeTakeFirstOrThrow();
      const view = bookingView(row);
      await recordAudit(trx, actor, {
        action: 'booking.updated',
        targetType: 'booking',
        targetId: bookingId,
        details: { before: bookingView(before), after: view },
      });
      await queueCalendarPush(trx, bookingId, [...new Set([...before.resource_ids, ...resourceIds])]);
      await emitEvent(trx, actor.organizationId, 'booking.updated', view, deps.clock());
      return view;
    }),
  );
}

/**
 * The transactional outbox of calendar sync: every connection of the booking's resources (before and
 * after a change) that Sched writes to is marked to receive the booking's current version.
 */
async function queueCalendarPush(db: Db, bookingId: string, resourceIds: readonly string[]): Promise<void> {
  await sql`
    insert into booking_calendar_links (booking_id, connection_id, organization_id)
    select ${bookingId}::uuid, connection_id, organization_id from calendar_connections
    where resource_id = any(${resourceIds}::uuid[]) and direction <> 'pull'
    on conflict (booking_id, connection_id) do update set push_pending = true, push_attempts = 0`.execute(db);
}

/** Idempotent: cancelling a cancelled booking returns it unchanged. */
export async function cancelBooking(
  deps: ServiceDeps,
  actor: Actor,
  bookingId: string,
  reason: string | undefined,
): Promise<BookingView> {
  return deps.db.transaction().execute(async (trx) => {
    const before = await findBooking(trx, actor, bookingId, true);
    if (before.status === 'cancelled') return bookingView(before);
    const row = await trx
      .updateTable('bookings')
      .set({ status: 'cancelled', cancel_reason: reason ?? null, updated_at: new Date(deps.clock()) })
      .where('booking_id', '=', bookingId)
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx
      .updateTable('booking_resources')
      .set({ status: 'cancelled' })
      .where('booking_id', '=', bookingId)
      .execute();
    const view = bookingView(row);
    await recordAudit(trx, actor, {
      action: 'booking.cancelled',
      targetType: 'booking',
      targetId: bookingId,
      details: { reason: reason ?? null },
    });
    await queueCalendarPush(trx, bookingId, before.resource_ids);
    await emitEvent(trx, actor.organizationId, 'booking.cancelled', view, deps.clock());
    return view;
  });
}

export type BookingListQuery = {
  resource_id?: string | undefined;
  start?: number | undefined;
  end?: number | undefined;
  status?: BookingStatus | undefined;
  limit?: number | undefined;
  cursor?: string | undefined;
};

export async function listBookings(
  db: Db,
  actor: Actor,
  query: BookingListQuery,
): Promise<{ bookings: BookingView[]; next_cursor: string | null }> {
  if (query.start !== undefined && query.end !== undefined && query.end <= query.start) {
    throw validationError('end', 'must be after start');
  }
  const page = pageOf(query);
  let select = db
    .selectFrom('bookings')
    .selectAll()
    .select(timeKey('start_time').as('cursor_time'))
    .where('organization_id', '=', actor.organizationId);
  if (query.resource_id) {
    select = select.where(sql<boolean>`resource_ids @> array[${query.resource_id}]::uuid[]`);
  }
  // A booking is listed when it overlaps the window, so one running across `start` is included.
  if (query.start !== undefined) select = select.where('end_time', '>', new Date(query.start));
  if (query.end !== undefined) select = select.where('start_time', '<', new Date(query.end));
  if (query.status) select = select.where('status', '=', query.status);
  if (page.after) select = select.where(afterKey('start_time', 'booking_id', page.after));
  const rows = await select
    .orderBy('start_time')
    .orderBy('booking_id')
    .limit(page.limit + 1)
    .execute();
  const { items, nextCursor } = finishPage(rows, page.limit, (row) => row.booking_id);
  return { bookings: items.map(bookingView), next_cursor: nextCursor };
}
