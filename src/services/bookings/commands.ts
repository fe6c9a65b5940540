import { randomUUID } from 'node:crypto';
import type { Attendee, BookingRow } from '../../storage/database.js';
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
  const event = {
    organizationId: actor.organizationId,
    type: 'booking.created' as const,
    payload: eventPayload('booking.created', view, now),
    at,
  };

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
