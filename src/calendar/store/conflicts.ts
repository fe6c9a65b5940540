import { sql } from 'kysely';
import { formatInstant } from '../../domain/index.js';
import type { ProviderVersion } from '../policy/sync-decisions.js';
import type { BookingRow, ConnectionRow } from '../../storage/database.js';
import { recordAudit } from '../../services/audit.js';
import { bookingView, cancelBooking, updateBooking } from '../../services/bookings/index.js';
import { PROVIDER_DISPLAY_NAMES, type CalendarDeps } from './connections.js';
import type { Actor } from '../../services/context.js';
import { ErrorCode, SchedError } from '../../services/errors.js';
import { afterKey, finishPage, pageOf, timeKey } from '../../services/pagination.js';
import { emitEvent } from '../../services/webhook-events.js';

/**
 * Changes the booking to match the provider's version: cancelled or deleted there cancels it, moved
 * there moves it. The schedule is not consulted (a person moved it in their own calendar), but the
 * database still refuses an overlap with another booking: then false, and a conflict is opened.
 */
export async function applyProviderVersion(
  deps: CalendarDeps,
  actor: Actor,
  booking: BookingRow,
  provider: ProviderVersion,
  connection: ConnectionRow,
): Promise<boolean> {
  const scoped = { ...actor, organizationId: booking.organization_id };
  if (provider.kind === 'deleted' || provider.status === 'cancelled') {
    const where = PROVIDER_DISPLAY_NAMES[connection.provider];
    await cancelBooking(deps, scoped, booking.booking_id, `cancelled in ${where}`);
    return true;
  }
  try {
    await updateBooking(deps, scoped, booking.booking_id, {
      start: provider.startsAt,
      end: provider.endsAt,
      ignore_availability: true,
    });
    return true;
  } catch (error) {
    if (error instanceof SchedError && error.code === ErrorCode.SLOT_UNAVAILABLE) return false;
    throw error;
  }
}

function providerVersionView(provider: ProviderVersion): Record<string, unknown> {
  if (provider.kind === 'deleted') return { status: 'deleted' };
  return {
    status: provider.status,
    start_time: formatInstant(provider.startsAt),
    end_time: formatInstant(provider.endsAt),
    updated_at: provider.modifiedAt === null ? null : formatInstant(provider.modifiedAt),
  };
}

function schedVersionView(booking: BookingRow): Record<string, unknown> {
  const view = bookingView(booking);
  return {
    status: view.status,
    start_time: view.start_time,
    end_time: view.end_time,
    title: view.title,
    updated_at: view.updated_at,
  };
}

/**
 * Records that the booking and its event disagree. One open conflict per booking and connection: a
 * later change at the provider updates it rather than piling up new ones.
 */
export async function openConflict(
  deps: CalendarDeps,
  actor: Actor,
  connection: ConnectionRow,
  booking: BookingRow,
  provider: ProviderVersion,
): Promise<void> {
  const now = deps.clock();
  await deps.db.transaction().execute(async (trx) => {
    const row = (
      await sql<ConflictRow>`
        insert into calendar_conflicts (organization_id, booking_id, connection_id, sched_version, provider_version,
          detected_at)
        values (${booking.organization_id}, ${booking.booking_id}, ${connection.connection_id},
          ${JSON.stringify(schedVersionView(booking))}::jsonb, ${JSON.stringify(providerVersionView(provider))}::jsonb,
          ${new Date(now)})
        on conflict (booking_id, connection_id) where status = 'open'
        do update set provider_version = excluded.provider_version, sched_version = excluded.sched_version,
          detected_at = excluded.detected_at
        returning *`.execute(trx)
    ).rows[0];
    if (!row) return;
    const view = conflictView(row);
    await recordAudit(trx, actor, {
      action: 'conflict.detected',
      targetType: 'conflict',
      targetId: row.conflict_id,
      details: view,
    });
    await emitEvent(trx, booking.organization_id, 'conflict.detected', view, now);
  });
}

type ConflictRow = {
  conflict_id: string;
  booking_id: string;
  connection_id: string;
  sched_version: Record<string, unknown>;
  provider_version: Record<string, unknown>;
  detected_at: Date;
  status: 'open' | 'resolved';
  resolution: 'sched' | 'provider' | null;
  resolved_at: Date | null;
};

export type ConflictView = {
  conflict_id: string;
  booking_id: string;
  connection_id: string;
  sched_version: Record<string, unknown>;
  provider_version: Record<string, unknown>;
  detected_at: string;
  status: 'open' | 'resolved';
  resolution: 'sched' | 'provider' | null;
  resolved_at: string | null;
};

function conflictView(row: ConflictRow): ConflictView {
  return {
    conflict_id: row.conflict_id,
    booking_id: row.booking_id,
    connection_id: row.connection_id,
    sched_version: row.sched_version,
    provider_version: row.provider_version,
    detected_at: row.detected_at.toISOString(),
    status: row.status,
    resolution: row.resolution,
    resolved_at: row.resolved_at?.toISOString() ?? null,
  };
}

export async function listConflicts(
  deps: CalendarDeps,
  actor: Actor,
  query: { status?: 'open' | 'resolved' | undefined; limit?: number; cursor?: string },
): Promise<{ conflicts: ConflictView[]; next_cursor: string | null }> {
  const page = pageOf(query);
  let select = deps.db
    .selectFrom('calendar_conflicts')
    .selectAll()
    .select(timeKey('detected_at').as('cursor_time'))
    .where('organization_id', '=', actor.organizationId)
    .orderBy('detected_at')
    .orderBy('conflict_id')
    .limit(page.limit + 1);
  if (query.status) select = select.where('status', '=', query.status);
  if (page.after) select = select.where(afterKey('detected_at', 'conflict_id', page.after));
  const rows = await select.execute();
  const { items, nextCursor } = finishPage(
    rows as (ConflictRow & { cursor_time: string })[],
    page.limit,
    (item) => item.conflict_id,
  );
  return { conflicts: items.map(conflictView), next_cursor: nextCursor };
}

/**
 * keep "sched": the booking stands and is written to the provider again. keep "provider": the booking
 * takes the provider's version (moved or cancelled); if that time is taken, a 409 says so and the
 * conflict stays open.
 */
export async function resolveConflict(
  deps: CalendarDeps,
  actor: Actor,
  conflictId: string,
  keep: 'sched' | 'provider',
): Promise<ConflictView> {
  const row = await deps.db
    .selectFrom('calendar_conflicts')
    .selectAll()
    .where('conflict_id', '=', conflictId)
    .where('organization_id', '=', actor.organizationId)
    .executeTakeFirst();
  if (!row) throw new SchedError(ErrorCode.CONFLICT_NOT_FOUND, `no conflict ${conflictId}`);
  if (row.status !== 'open') {
    throw new SchedError(ErrorCode.CONFLICT_ALREADY_RESOLVED, `conflict ${conflictId} is already resolved`);
  }
  const provider = row.provider_version;
  const deleted = provider.status === 'deleted';
  if (keep === 'provider') {
    const booking = await deps.db
      .selectFrom('bookings')
      .selectAll()
      .where('booking_id', '=', row.booking_id)
      .executeTakeFirstOrThrow();
    if (deleted || provider.status === 'cancelled') {
      await cancelBooking(deps, actor, booking.booking_id, 'cancelled at the calendar provider');
    } else {
      await updateBooking(deps, actor, booking.booking_id, {
        start: Date.parse(String(provider.start_time)),
        end: Date.parse(String(provider.end_time)),
        ignore_availability: true,
      });
    }
  }
  const now = deps.clock();
  return deps.db.transaction().execute(async (trx) => {
    // Either way the connection's copy is brought in line: with keep "provider" the booking already
    // matches it and the write is a no-op update; with keep "sched" it is overwritten or recreated.
    await trx
      .updateTable('booking_calendar_links')
      .set({ push_pending: true, ...(deleted ? { remote_id: null, etag: null } : {}) })
      .where('booking_id', '=', row.booking_id)
      .where('connection_id', '=', row.connection_id)
      .execute();
    const updated = await trx
      .updateTable('calendar_conflicts')
      .set({ status: 'resolved', resolution: keep, resolved_at: new Date(now) })
      .where('conflict_id', '=', conflictId)
      .returningAll()
      .executeTakeFirstOrThrow();
    const view = conflictView(updated);
    await recordAudit(trx, actor, {
      action: 'conflict.resolved',
      targetType: 'conflict',
      targetId: conflictId,
      details: { keep },
    });
    return view;
  });
}
