import { sql } from 'kysely';
import type {
  CalendarProvider,
  OutgoingEvent,
  RemoteChanges,
  RemoteEvent,
} from '../domain/calendar-provider.js';
import { decideSync, syncRetryDelayMs, type ProviderVersion } from '../domain/sync-decisions.js';
import { ProviderError } from '../providers/provider-error.js';
import type { BookingRow, ConnectionRow } from '../storage/database.js';
import { recordAudit } from './audit.js';
import {
  connectionView,
  openProvider,
  PROVIDER_DISPLAY_NAMES,
  providerFailure,
  type CalendarDeps,
} from './calendar-connections.js';
import { applyProviderVersion, openConflict } from './calendar-reconcile.js';
import {
  expandForStorage,
  EXPANDED_FUTURE_MS,
  expansionWindow,
  fromRemote,
  reexpandSeries,
  REEXPAND_MARGIN_MS,
  removeObjects,
  storeObjects,
} from './calendar-store.js';
import type { Actor } from './context.js';
import { ErrorCode, SchedError } from './errors.js';
import { emitEvent } from './webhook-events.js';
import { ensureWatch } from './calendar-watches.js';

export type SyncStats = {
  fetched: number;
  created: number;
  updated: number;
  deleted: number;
  pushed: number;
  conflicts: number;
};

/** Longer than any sync should take; a process that dies mid-sync frees the connection after it. */
const LEASE_MS = 5 * 60_000;
const WAIT_FOR_LEASE_MS = 30_000;
/** Bookings written per sync; the rest stay pending and the next sync, queued at once, goes on. */
export const MAX_PUSH_PER_SYNC = 500;
/** A write the provider keeps refusing (not a transient failure) is given up after this many tries. */
const MAX_REJECTED_PUSHES = 5;

type SyncContext = {
  deps: CalendarDeps;
  connection: ConnectionRow;
  provider: CalendarProvider;
  zone: string;
  actor: Actor;
  stats: SyncStats;
  now: number;
  /** Set when a pull decided that Sched's version must be written again. */
  pushAgain: boolean;
};

export function syncActor(connection: ConnectionRow): Actor {
  return {
    organizationId: connection.organization_id,
    label: `sync:${connection.provider}:${connection.connection_id}`,
    scopes: ['write'],
  };
}

/**
 * One sync of one connection: pending bookings are written to the provider, then its changes are
 * read and stored, and changes to bookings' events are settled by the conflict policy. The
 * connection's lease keeps any other process from syncing it at the same time.
 */
export async function syncConnection(
  deps: CalendarDeps,
  connectionId: string,
  options: { wait?: boolean; log?: (message: string, error: unknown) => void } = {},
): Promise<SyncStats> {
  const connection = await claimLease(deps, connectionId, options.wait ?? false);
  if (connection.status === 'pending_authorization') {
    await releaseLease(deps, connectionId);
    throw new SchedError(
      ErrorCode.CALENDAR_NOT_ACTIVE,
      `${PROVIDER_DISPLAY_NAMES[connection.provider]} ${connection.calendar_id} has not been authorized yet`,
    );
  }
  const stats: SyncStats = { fetched: 0, created: 0, updated: 0, deleted: 0, pushed: 0, conflicts: 0 };
  let cursor = connection.sync_cursor;
  // A long first sync keeps its lease; only a process that died lets it run out.
  const heartbeat = setInterval(() => {
    deps.db
      .updateTable('calendar_connections')
      .set({ sync_lease_until: new Date(deps.clock() + LEASE_MS) })
      .where('connection_id', '=', connectionId)
      .where('sync_lease_until', 'is not', null)
      .execute()
      .catch(() => undefined);
  }, LEASE_MS / 5);
  heartbeat.unref();
  try {
    const resource = await deps.db
      .selectFrom('resources')
      .select('time_zone')
      .where('resource_id', '=', connection.resource_id)
      .executeTakeFirstOrThrow();
    const context: SyncContext = {
      deps,
      connection,
      provider: openProvider(deps, connection),
      zone: resource.time_zone,
      actor: syncActor(connection),
      stats,
      now: deps.clock(),
      pushAgain: false,
    };
    const pushes = connection.direction !== 'pull' && context.provider.capabilities.write;
    if (pushes) await pushPending(context);
    if (connection.direction !== 'push') cursor = await pull(context);
    if (pushes && context.pushAgain) await pushPending(context);
    await keepExpansionCurrent(context);
    // Under the lease, so two processes never open two channels for one connection.
    await ensureWatch(deps, connection, context.provider, options.log);
    await recordSuccess(context, cursor);
    return stats;
  } catch (error) {
    await recordFailure(deps, connection, error);
    if (error instanceof ProviderError) throw providerFailure(error, connection.provider);
    throw error;
  } finally {
    clearInterval(heartbeat);
  }
}

async function releaseLease(deps: CalendarDeps, connectionId: string): Promise<void> {
  await deps.db
    .updateTable('calendar_connections')
    .set({ sync_lease_until: null })
    .where('connection_id', '=', connectionId)
    .execute();
}

async function claimLease(deps: CalendarDeps, connectionId: string, wait: boolean): Promise<ConnectionRow> {
  const started = Date.now();
  for (;;) {
    const now = deps.clock();
    const row = await deps.db
      .updateTable('calendar_connections')
      .set({ sync_lease_until: new Date(now + LEASE_MS) })
      .where('connection_id', '=', connectionId)
      .where((eb) => eb.or([eb('sync_lease_until', 'is', null), eb('sync_lease_until', '<', new Date(now))]))
      .returningAll()
      .executeTakeFirst();
    if (row) return row;
    const exists = await deps.db
      .selectFrom('calendar_connections')
      .select('connection_id')
      .where('connection_id', '=', connectionId)
      .executeTakeFirst();
    if (!exists) throw new SchedError(ErrorCode.CALENDAR_NOT_FOUND, `no calendar connection ${connectionId}`);
    if (!wait || Date.now() - started > WAIT_FOR_LEASE_MS) {
      throw new SchedError(ErrorCode.SYNC_IN_PROGRESS, 'this calendar is being synchronized right now');
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function pull(context: SyncContext): Promise<string | null> {
  const { deps, connection, provider, stats } = context;
  const knownRows = await deps.db
    .selectFrom('calendar_events')
    .select(['remote_id', 'etag'])
    .where('connection_id', '=', connection.connection_id)
    .execute();
  const known = new Map(knownRows.map((row) => [row.remote_id, row.etag]));
  let changes: RemoteChanges;
  try {
    changes = await provider.listChanges(connection.sync_cursor, known);
  } catch (error) {
    if (!(error instanceof ProviderError) || error.code !== 'CURSOR_INVALID') throw error;
    changes = await provider.listChanges(null, known);
  }
  const window = expansionWindow(context.now);
  const objects = changes.changed.map((event) => fromRemote(event, window, context.zone));
  stats.fetched += changes.changed.length;
  for (const object of objects) {
    if (known.has(object.remoteId)) stats.updated++;
    else stats.created++;
  }
  const removed = changes.removed.filter((remoteId) => known.has(remoteId));
  await storeObjects(deps.db, connection, objects);
  await removeObjects(deps.db, connection.connection_id, removed);
  stats.deleted += removed.length;
  await settleBookingEvents(context, changes.changed, removed);
  return changes.cursor;
}

type LinkRow = {
  booking_id: string;
  remote_id: string | null;
  etag: string | null;
  sequence: number;
};

/** Changes at the provider to the events Sched wrote for bookings. */
async function settleBookingEvents(
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

function deletedVersion(context: SyncContext): ProviderVersion {
  return { kind: 'deleted', detectedAt: context.now };
}

function providerVersionOf(context: SyncContext, event: RemoteEvent): ProviderVersion {
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
async function settle(
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
      status: booking.status,
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

type PendingRow = BookingRow & {
  link_create_attempted: boolean;
  link_remote_id: string | null;
  link_etag: string | null;
  link_sequence: number;
  link_attempts: number;
};

async function pushPending(context: SyncContext): Promise<void> {
  const { deps, connection } = context;
  context.pushAgain = false;
  const rows = (
    await sql<PendingRow>`
    select b.*, l.create_attempted as link_create_attempted, l.remote_id as link_remote_id, l.etag as link_etag, l.sequence as link_sequence,
      l.push_attempts as link_attempts
    from booking_calendar_links l join bookings b on b.booking_id = l.booking_id
    where l.connection_id = ${connection.connection_id} and l.push_pending
      and not exists (select 1 from calendar_conflicts c where c.booking_id = l.booking_id
        and c.connection_id = l.connection_id and c.status = 'open')
    order by b.start_time
    limit ${MAX_PUSH_PER_SYNC}`.execute(deps.db)
  ).rows;
  for (const row of rows) {
    try {
      await pushOne(context, row);
    } catch (error) {
      if (!(error instanceof ProviderError) || error.transient || error.code === 'AUTH_FAILED') throw error;
      await deps.db
        .updateTable('booking_calendar_links')
        .set({
          last_error: error.message,
          push_attempts: row.link_attempts + 1,
          push_pending: row.link_attempts + 1 < MAX_REJECTED_PUSHES,
        })
        .where('booking_id', '=', row.booking_id)
        .where('connection_id', '=', connection.connection_id)
        .execute();
    }
  }
}

export function outgoingEvent(booking: BookingRow, sequence: number, zone: string): OutgoingEvent {
  return {
    uid: `${booking.booking_id}@sched`,
    bookingId: booking.booking_id,
    sequence,
    startsAt: booking.start_time.getTime(),
    endsAt: booking.end_time.getTime(),
    timeZone: zone,
    title: booking.title,
    description: booking.description,
    status: booking.status,
    attendees: booking.attendees,
    updatedAt: booking.updated_at.getTime(),
  };
}

async function pushOne(context: SyncContext, row: PendingRow): Promise<void> {
  const { provider, connection } = context;
  const wanted = row.status === 'confirmed' && row.resource_ids.includes(connection.resource_id);
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
    if (error.code !== 'PRECONDITION_FAILED' && error.code !== 'NOT_FOUND') throw error;
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

/** Series are stored expanded up to a horizon; it moves forward as time passes. */
async function keepExpansionCurrent(context: SyncContext): Promise<void> {
  const { deps, connection, now } = context;
  const until = connection.expanded_until?.getTime() ?? 0;
  const window = expansionWindow(now);
  if (until - now < EXPANDED_FUTURE_MS - REEXPAND_MARGIN_MS && connection.expanded_until !== null) {
    await reexpandSeries(deps.db, connection, context.zone, window);
  }
  if (connection.expanded_until === null || until - now < EXPANDED_FUTURE_MS - REEXPAND_MARGIN_MS) {
    await deps.db
      .updateTable('calendar_connections')
      .set({ expanded_from: new Date(window.start), expanded_until: new Date(window.end) })
      .where('connection_id', '=', connection.connection_id)
      .execute();
  }
}

async function recordSuccess(context: SyncContext, cursor: string | null): Promise<void> {
  const { deps, connection, stats, now } = context;
  const planned =
    connection.frequency_minutes > 0 ? new Date(now + connection.frequency_minutes * 60_000) : null;
  await deps.db
    .updateTable('calendar_connections')
    .set({
      sync_cursor: cursor,
      last_synced_at: new Date(now),
      last_error: null,
      failure_count: 0,
      // Credentials that work again (a manual sync after a server fixed its auth) end reauth_required too.
      status:
        connection.status === 'error' || connection.status === 'reauth_required'
          ? 'active'
          : connection.status,
      // A request to sync that came in meanwhile (a push notification) keeps the connection due now.
      next_sync_at: sql<Date | null>`case when sync_requests <> ${connection.sync_requests}
        then ${new Date(deps.clock())}::timestamptz
        else ${planned}::timestamptz end`,
      sync_lease_until: null,
    })
    .where('connection_id', '=', connection.connection_id)
    .execute();
  const changed = stats.created + stats.updated + stats.deleted + stats.pushed + stats.conflicts;
  if (changed > 0) {
    await recordAudit(deps.db, context.actor, {
      action: 'calendar.synced',
      targetType: 'calendar_connection',
      targetId: connection.connection_id,
      details: { ...stats },
    });
  }
}

/**
 * A failed sync is kept on the connection and retried with backoff; refused credentials stop the
 * retries until someone reconnects. Webhooks fire on the way into a failing state, not on every retry.
 */
async function recordFailure(deps: CalendarDeps, connection: ConnectionRow, error: unknown): Promise<void> {
  const now = deps.clock();
  const authFailed = error instanceof ProviderError && error.code === 'AUTH_FAILED';
  const message =
    error instanceof ProviderError
      ? `${PROVIDER_DISPLAY_NAMES[connection.provider]}: ${error.message}`
      : error instanceof SchedError
        ? error.message
        : 'internal error during synchronization';
  const failures = connection.failure_count + 1;
  const retryAfter = error instanceof ProviderError ? (error.details.retryAfterMs ?? 0) : 0;
  const status = authFailed ? 'reauth_required' : 'error';
  await deps.db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('calendar_connections')
      .set({
        status,
        last_error: message,
        failure_count: failures,
        next_sync_at: authFailed ? null : new Date(now + Math.max(retryAfter, syncRetryDelayMs(failures))),
        sync_lease_until: null,
      })
      .where('connection_id', '=', connection.connection_id)
      .returningAll()
      .executeTakeFirst();
    if (!row || connection.status === status) return;
    const view = connectionView(row);
    await emitEvent(
      trx,
      connection.organization_id,
      authFailed ? 'calendar.reauth_required' : 'calendar.sync_failed',
      { ...view, error: message },
      now,
    );
  });
}
