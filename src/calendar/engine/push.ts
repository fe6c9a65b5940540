import { sql } from 'kysely';
import { canWriteSeries, type OutgoingEvent } from '../port/provider.js';
import { ProviderError } from '../../integrations/index.js';
import { type BookingRow, calendarStatus } from '../../storage/database.js';
import { deletedVersion, providerVersionOf, settle } from './settle.js';
import { removeObjects } from '../store/events.js';
import type { SyncContext } from './context.js';
import { decideFailure } from '../policy/failure-policy.js';
import { pushPendingSeries } from './push-series.js';

/** Bookings written per sync; the rest stay pending and the next sync, queued at once, goes on. */
const MAX_PUSH_PER_SYNC = 500;

type PendingRow = BookingRow & {
  link_create_attempted: boolean;
  link_remote_id: string | null;
  link_etag: string | null;
  link_sequence: number;
  link_attempts: number;
};

export async function pushPending(context: SyncContext): Promise<void> {
  const { deps, connection } = context;
  context.pushAgain = false;
  // A provider that takes recurrence gets each series as one recurring event; its occurrences are
  // not written one by one.
  const { provider } = context;
  const wholeSeries = canWriteSeries(provider);
  if (wholeSeries) await pushPendingSeries(context, provider);
  const rows = (
    await sql<PendingRow>`
    select b.*, l.create_attempted as link_create_attempted, l.remote_id as link_remote_id, l.etag as link_etag, l.sequence as link_sequence,
      l.push_attempts as link_attempts
    from booking_calendar_links l join bookings b on b.booking_id = l.booking_id
    where l.connection_id = ${connection.connection_id} and l.push_pending
      and not exists (select 1 from calendar_conflicts c where c.booking_id = l.booking_id
        and c.connection_id = l.connection_id and c.status = 'open')
      ${wholeSeries ? sql`and b.series_id is null` : sql``}
    order by b.start_time
    limit ${MAX_PUSH_PER_SYNC}`.execute(deps.db)
  ).rows;
  for (const row of rows) {
    try {
      await pushOne(context, row);
    } catch (error) {
      const attempts = row.link_attempts + 1;
      const code = error instanceof ProviderError ? error.code : null;
      const decision = decideFailure({ code, step: 'push', failures: attempts });
      // The whole sync fails (transient, refused credentials, not the provider's failure).
      if (decision.scope === 'connection' || !(error instanceof ProviderError)) throw error;
      await deps.db
        .updateTable('booking_calendar_links')
        .set({
          last_error: error.message,
          push_attempts: attempts,
          push_pending: decision.action === 'retry',
        })
        .where('booking_id', '=', row.booking_id)
        .where('connection_id', '=', connection.connection_id)
        .execute();
    }
  }
}

function outgoingEvent(booking: BookingRow, sequence: number, zone: string): OutgoingEvent {
  return {
    uid: `${booking.booking_id}@sched`,
    bookingId: booking.booking_id,
    sequence,
    startsAt: booking.start_time.getTime(),
    endsAt: booking.end_time.getTime(),
    timeZone: zone,
    title: booking.title,
    description: booking.description,
    status: calendarStatus(booking.status),
    attendees: booking.attendees,
    updatedAt: booking.updated_at.getTime(),
  };
}

async function pushOne(context: SyncContext, row: PendingRow): Promise<void> {
  const { provider, connection } = context;
  const wanted =
    calendarStatus(row.status) === 'confirmed' && row.resource_ids.includes(connection.resource_id);
  if (!wanted) {
    // A cancelled booking's event goes whatever happened to it at the provider meanwhile, also one
    // whose creation went through although its answer was lost.
    const remoteId =
      row.link_remote_id ??
      (row.link_create_attempted
        ? ((await provider.findEvent(`${row.booking_id}@sched`))?.remoteId ?? null)
        : null);
    if (remoteId) {
      await provider.deleteEvent(remoteId, null);
      await removeObjects(context.deps.db, connection.connection_id, [remoteId]);
      context.stats.pushed++;
    }
    await finishPush(context, row, { remoteId: null, etag: null, sequence: row.link_sequence });
    return;
  }
  const sequence = row.link_sequence + 1;
  const event = outgoingEvent(row, sequence, context.zone);
  if (!row.link_remote_id) {
    if (!row.link_create_attempted) {
      await context.deps.db
        .updateTable('booking_calendar_links')
        .set({ create_attempted: true })
        .where('booking_id', '=', row.booking_id)
        .where('connection_id', '=', connection.connection_id)
        .execute();
    }
    const written = await provider.createEvent(event);
    context.stats.pushed++;
    await finishPush(context, row, { ...written, sequence });
    return;
  }
  try {
    const written = await provider.updateEvent(row.link_remote_id, row.link_etag, event);
    context.stats.pushed++;
    await finishPush(context, row, { ...written, sequence });
  } catch (error) {
    if (!(error instanceof ProviderError)) throw error;
    const decision = decideFailure({ code: error.code, step: 'update', failures: row.link_attempts + 1 });
    if (decision.action !== 'settle') throw error;
    // Changed or deleted at the provider since our last write: settled like a change found by a pull.
    const current = error.code === 'NOT_FOUND' ? null : await provider.getEvent(row.link_remote_id);
    const link = {
      booking_id: row.booking_id,
      remote_id: row.link_remote_id,
      etag: row.link_etag,
      sequence: row.link_sequence,
    };
    await settle(
      context,
      link,
      current ? providerVersionOf(context, current) : deletedVersion(context),
      current ?? undefined,
    );
  }
}

/**
 * Records a write. The link stays pending if the booking changed while it was being written, so the
 * newer version goes out on the next pass rather than being lost.
 */
async function finishPush(
  context: SyncContext,
  row: PendingRow,
  written: { remoteId: string | null; etag: string | null; sequence: number },
): Promise<void> {
  await sql`
    update booking_calendar_links l set remote_id = ${written.remoteId}, etag = ${written.etag},
      sequence = ${written.sequence}, last_pushed_at = ${new Date(context.now)}, push_attempts = 0,
      last_error = null,
      push_pending = coalesce((select b.updated_at <> ${row.updated_at} from bookings b
        where b.booking_id = l.booking_id), false)
    where l.booking_id = ${row.booking_id} and l.connection_id = ${context.connection.connection_id}`.execute(
    context.deps.db,
  );
}
