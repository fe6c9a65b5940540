import type { RemoteEvent } from '../port/provider.js';
import { decideSync, type ProviderVersion } from '../policy/sync-decisions.js';
import { type BookingRow, calendarStatus } from '../../storage/database.js';
import { applyProviderVersion, openConflict } from '../store/conflicts.js';
import { expandForStorage, expansionWindow } from '../parsing/expand.js';
import type { SyncContext } from './context.js';

/*
 * Settling a difference between a booking and its event at the provider, found by a pull or by a
 * conditional write that lost: the policy decides (domain/sync-decisions.ts), this carries it out.
 */

export type LinkRow = {
  booking_id: string;
  remote_id: string | null;
  etag: string | null;
  sequence: number;
};

/** Changes at the provider to the events Sched wrote for bookings. */
export async function settleBookingEvents(
  context: SyncContext,
  changed: readonly RemoteEvent[],
  removed: readonly string[],
): Promise<void> {
  const remoteIds = [...changed.map((event) => event.remoteId), ...removed];
  if (remoteIds.length === 0) return;
  const links: LinkRow[] = [];
  for (let index = 0; index < remoteIds.length; index += 500) {
    links.push(
      ...(await context.deps.db
        .selectFrom('booking_calendar_links')
        .select(['booking_id', 'remote_id', 'etag', 'sequence'])
        .where('connection_id', '=', context.connection.connection_id)
        .where('remote_id', 'in', remoteIds.slice(index, index + 500))
        .execute()),
    );
  }
  const byRemote = new Map(changed.map((event) => [event.remoteId, event]));
  for (const link of links) {
    const event = link.remote_id ? byRemote.get(link.remote_id) : undefined;
    // Our own write coming back: the provider's version tag is the one our write got.
    if (event && event.etag !== null && event.etag === link.etag) continue;
    await settle(context, link, event ? providerVersionOf(context, event) : deletedVersion(context), event);
  }
}

export function deletedVersion(context: SyncContext): ProviderVersion {
  return { kind: 'deleted', detectedAt: context.now };
}

export function providerVersionOf(context: SyncContext, event: RemoteEvent): ProviderVersion {
  const result = expandForStorage(event.ics, expansionWindow(context.now), context.zone);
  const master = result.ok ? result.summary.master : null;
  if (!result.ok || !master) return deletedVersion(context);
  return {
    kind: 'event',
    status: master.status,
    startsAt: master.startsAt,
    endsAt: master.endsAt,
    modifiedAt: result.summary.lastModified,
    detectedAt: context.now,
  };
}

async function loadBooking(context: SyncContext, bookingId: string): Promise<BookingRow | undefined> {
  return context.deps.db
    .selectFrom('bookings')
    .selectAll()
    .where('booking_id', '=', bookingId)
    .executeTakeFirst();
}

/** Carries out the policy's answer to one difference between a booking and its event. */
export async function settle(
  context: SyncContext,
  link: LinkRow,
  provider: ProviderVersion,
  event: RemoteEvent | undefined,
): Promise<void> {
  const { deps, connection } = context;
  const booking = await loadBooking(context, link.booking_id);
  if (!booking) return;
  const decision = decideSync(
    connection.conflict_policy,
    {
      status: calendarStatus(booking.status),
      startsAt: booking.start_time.getTime(),
      endsAt: booking.end_time.getTime(),
      updatedAt: booking.updated_at.getTime(),
    },
    provider,
  );
  const remoteId = provider.kind === 'deleted' ? null : link.remote_id;
  const etag = event?.etag ?? null;
  switch (decision.action) {
    case 'in_sync':
      await updateLink(context, link.booking_id, { etag, remote_id: remoteId });
      return;
    case 'push_sched':
      await updateLink(context, link.booking_id, { etag, remote_id: remoteId, push_pending: true });
      context.pushAgain = true;
      return;
    case 'apply_provider': {
      const applied = await applyProviderVersion(deps, context.actor, booking, provider, connection);
      if (applied) {
        await updateLink(context, link.booking_id, { etag, remote_id: remoteId, push_pending: false });
        return;
      }
      // The provider's time is taken by another booking: a person has to decide.
      await openConflict(deps, context.actor, connection, booking, provider);
      await updateLink(context, link.booking_id, { etag, remote_id: remoteId, push_pending: false });
      context.stats.conflicts++;
      return;
    }
    case 'open_conflict':
      await openConflict(deps, context.actor, connection, booking, provider);
      await updateLink(context, link.booking_id, { etag, remote_id: remoteId, push_pending: false });
      context.stats.conflicts++;
      return;
  }
}

function updateLink(
  context: SyncContext,
  bookingId: string,
  values: { etag: string | null; remote_id: string | null; push_pending?: boolean },
) {
  return context.deps.db
    .updateTable('booking_calendar_links')
    .set(values)
    .where('booking_id', '=', bookingId)
    .where('connection_id', '=', context.connection.connection_id)
    .execute();
}
