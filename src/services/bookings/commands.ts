import { randomUUID } from 'node:crypto';
import type { Attendee, BookingRow, Db } from '../../storage/database.js';
import { recordAudit } from '../audit.js';
import { emitEvent, eventPayload } from '../webhook-events.js';
import { loadBookableResources } from '../bookable-resources.js';
import type { DatabaseKind } from '../../storage/open-database.js';
import type { Actor, ServiceDeps } from '../context.js';
import { ErrorCode, SchedError } from '../errors.js';
import {
  checkInterval,
  findConflicts,
  hasBuffers,
  lockBufferedResources,
  refuseUnlessBookable,
  slotUnavailable,
} from './checks.js';
import { type Assign, placeOnFreeResources } from './assign.js';
import { holdResourcesFor, takeHold } from '../holds.js';
import { findBooking } from './queries.js';
import { type BookingView, bookingView } from './view.js';
import { guardDoubleBooking, insertBooking, insertBookingResources, queueCalendarPush } from './write.js';

/** With the database kind, the writes go as prepared statements on PostgreSQL. */
export type BookingDeps = ServiceDeps & { databaseKind?: DatabaseKind };

export type BookingInput = {
  resource_ids: string[];
  start: number;
  end: number;
  title: string;
  description?: string | null | undefined;
  attendees?: Attendee[] | undefined;
  metadata?: Record<string, unknown> | undefined;
  ignore_availability?: boolean | undefined;
  /** `pending` awaits POST /bookings/{id}/confirm and blocks the time meanwhile. */
  status?: 'pending' | 'confirmed' | undefined;
  assign?: Assign | undefined;
  /** Turns this hold into the booking. */
  hold_id?: string | undefined;
  /**
   * More rows of the booking (a public booking's manage token), written first in its transaction,
   * before any lock is taken; their foreign keys to the booking must be checked at commit.
   */
  withBooking?: ((trx: Db, bookingId: string) => Promise<void>) | undefined;
};

export async function createBooking(
  deps: BookingDeps,
  actor: Actor,
  input: BookingInput,
): Promise<BookingView> {
  const requested = { start: input.start, end: input.end };
  checkInterval(requested);
  const now = deps.clock();
  const ignoreAvailability = input.ignore_availability ?? false;
  const at = new Date(now);
  const status = input.status ?? 'confirmed';
  const assign = input.assign ?? 'all';
  const row: BookingRow = {
    booking_id: randomUUID(),
    organization_id: actor.organizationId,
    status,
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
    series_id: null,
    recurrence_id: null,
  };
  let view = bookingView(row);
  const audit = {
    organization_id: actor.organizationId,
    actor: actor.label,
    action: 'booking.created',
    target_type: 'booking',
    target_id: row.booking_id,
    details: JSON.stringify({ booking: view, ignore_availability: ignoreAvailability }),
  };
  const event = {
    organizationId: actor.organizationId,
    type: 'booking.created' as const,
    payload: eventPayload('booking.created', view, now),
    at,
  };

  /** The booking on the resources finally chosen, with its audit entry and events, in `trx`. */
  const insertOn = async (trx: Db, resourceIds: string[], details: Record<string, unknown> = {}) => {
    row.resource_ids = resourceIds;
    view = bookingView(row);
    const payload = { booking: view, ignore_availability: ignoreAvailability, ...details };
    await insertBooking(
      trx,
      deps.databaseKind,
      row,
      { ...audit, details: JSON.stringify(payload) },
      { ...event, payload: eventPayload('booking.created', view, now) },
    );
    if (status === 'pending') {
      await emitEvent(trx, actor.organizationId, 'booking.pending', view, now, deps.databaseKind);
    }
    return view;
  };

  if (input.hold_id !== undefined) {
    const holdId = input.hold_id;
    return guardDoubleBooking(deps, actor, input, undefined, () =>
      deps.db.transaction().execute(async (trx) => {
        await input.withBooking?.(trx, row.booking_id);
        const hold = await takeHold(trx, actor, holdId, now);
        const resourceIds = holdResourcesFor(hold, input, assign);
        const resources = await loadBookableResources(trx, actor, resourceIds, { kind: deps.databaseKind });
        await lockBufferedResources(trx, resources);
        // The hold already passed the schedule, notice and horizon when it was made; those are judged
        // as of then, so a hold taken at the edge of the notice period can still be booked.
        const conflicts = await findConflicts(
          trx,
          resources,
          requested,
          hold.created_at.getTime(),
          ignoreAvailability,
        );
        if (conflicts.length > 0) throw slotUnavailable(conflicts);
        return insertOn(trx, resourceIds, { hold_id: holdId });
      }),
    );
  }

  if (assign === 'one' || status === 'pending' || input.withBooking) {
    return guardDoubleBooking(deps, actor, input, undefined, () =>
      deps.db.transaction().execute(async (trx) => {
        await input.withBooking?.(trx, row.booking_id);
        return placeOnFreeResources(
          trx,
          actor,
          {
            resourceIds: input.resource_ids,
            assign,
            requested,
            checkedAt: now,
            now,
            ignoreAvailability,
            databaseKind: deps.databaseKind,
          },
          (resourceIds) => insertOn(trx, resourceIds, assign === 'one' ? { assign } : {}),
        );
      }),
    );
  }

  return guardDoubleBooking(deps, actor, input, undefined, async () => {
    const resources = await loadBookableResources(deps.db, actor, input.resource_ids, {
      kind: deps.databaseKind,
    });
    if (!resources.some(hasBuffers)) {
      await refuseUnlessBookable(deps.db, resources, requested, now, ignoreAvailability);
      await insertBooking(deps.db, deps.databaseKind, row, audit, event);
      return view;
    }
    return deps.db.transaction().execute(async (trx) => {
      await lockBufferedResources(trx, resources);
      const conflicts = await findConflicts(trx, resources, requested, now, ignoreAvailability);
      if (conflicts.length > 0) throw slotUnavailable(conflicts);
      await insertBooking(trx, deps.databaseKind, row, audit, event);
      return view;
    });
  });
}

export type BookingPatch = Partial<Omit<BookingInput, 'start' | 'end'>> & { start?: number; end?: number };

export async function updateBooking(
  deps: BookingDeps,
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
      if (before.status === 'cancelled' || before.status === 'rejected') {
        throw new SchedError(
          ErrorCode.BOOKING_CANCELLED,
          `a ${before.status} booking cannot be changed; book again instead`,
        );
      }
      const moved =
        requested.start !== before.start_time.getTime() ||
        requested.end !== before.end_time.getTime() ||
        resourceIds.join() !== before.resource_ids.join();
      if (moved) {
        const resources = await loadBookableResources(trx, actor, resourceIds, { kind: deps.databaseKind });
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
        await insertBookingResources(
          trx,
          actor,
          before,
          resourceIds,
          requested,
          before.status === 'pending' ? 'pending' : 'confirmed',
        );
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
      await emitEvent(trx, actor.organizationId, 'booking.updated', view, deps.clock(), deps.databaseKind);
      return view;
    }),
  );
}

/** Idempotent: cancelling a cancelled booking returns it unchanged. */
export async function cancelBooking(
  deps: BookingDeps,
  actor: Actor,
  bookingId: string,
  reason: string | undefined,
): Promise<BookingView> {
  return deps.db.transaction().execute(async (trx) => {
    const before = await findBooking(trx, actor, bookingId, true);
    if (before.status === 'cancelled') return bookingView(before);
    if (before.status === 'rejected') {
      throw new SchedError(ErrorCode.BOOKING_NOT_PENDING, 'a rejected booking cannot be cancelled');
    }
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
    await emitEvent(trx, actor.organizationId, 'booking.cancelled', view, deps.clock(), deps.databaseKind);
    return view;
  });
}

/**
 * pending → confirmed, or pending → rejected (which frees the time). Confirming a confirmed booking
 * and rejecting a rejected one change nothing and return it; any other transition is a 409.
 */
export async function decideBooking(
  deps: BookingDeps,
  actor: Actor,
  bookingId: string,
  decision: { to: 'confirmed' } | { to: 'rejected'; reason?: string | undefined },
): Promise<BookingView> {
  return deps.db.transaction().execute(async (trx) => {
    const before = await findBooking(trx, actor, bookingId, true);
    if (before.status === decision.to) return bookingView(before);
    if (before.status !== 'pending') {
      throw new SchedError(
        ErrorCode.BOOKING_NOT_PENDING,
        `only a pending booking can be ${decision.to}; this one is ${before.status}`,
      );
    }
    const now = deps.clock();
    const reason = decision.to === 'rejected' ? (decision.reason ?? null) : null;
    const row = await trx
      .updateTable('bookings')
      .set({
        status: decision.to,
        ...(decision.to === 'rejected' ? { cancel_reason: reason } : {}),
        updated_at: new Date(now),
      })
      .where('booking_id', '=', bookingId)
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx
      .updateTable('booking_resources')
      .set({ status: decision.to })
      .where('booking_id', '=', bookingId)
      .execute();
    const view = bookingView(row);
    const action = decision.to === 'confirmed' ? 'booking.confirmed' : 'booking.rejected';
    await recordAudit(trx, actor, {
      action,
      targetType: 'booking',
      targetId: bookingId,
      details: decision.to === 'rejected' ? { reason } : {},
    });
    if (decision.to === 'rejected') await queueCalendarPush(trx, bookingId, before.resource_ids);
    await emitEvent(trx, actor.organizationId, action, view, now, deps.databaseKind);
    return view;
  });
}
