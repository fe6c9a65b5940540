import { sql } from 'kysely';
import type { ChangePage, ChangeStream, ListingEnd } from '../port/provider.js';
import { decideFailure, type FailureStep } from '../policy/failure-policy.js';
import { ProviderError } from '../../integrations/index.js';
import type { ConnectionRow } from '../../storage/database.js';
import { recordAudit } from '../../services/audit.js';
import {
  connectionView,
  failureMessage,
  openProvider,
  PROVIDER_DISPLAY_NAMES,
  providerFailure,
  type CalendarDeps,
} from '../store/connections.js';
import { failedAtTokenRefresh } from '../store/tokens.js';
import {
  budgetWarning,
  calendarBudget,
  EXPANDED_FUTURE_MS,
  expansionWindow,
  REEXPAND_MARGIN_MS,
  type StoredObject,
} from '../parsing/expand.js';
import {
  eventWarnings,
  occurrencesKept,
  reexpandSeries,
  removeObjects,
  storageLimits,
  storeObjects,
} from '../store/events.js';
import { ErrorCode, SchedError } from '../../services/errors.js';
import { emitEvent } from '../../services/webhook-events.js';
import { ensureWatch } from '../store/watches.js';
import { pushPending } from './push.js';
import { settleBookingEvents } from './settle.js';
import { readAhead } from './pipeline.js';
import { syncActor, type SyncContext, type SyncStats } from './context.js';

export type { SyncStats } from './context.js';

/** Longer than any sync should take; a process that dies mid-sync frees the connection after it. */
const LEASE_MS = 5 * 60_000;
const WAIT_FOR_LEASE_MS = 30_000;
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
  // Each sync counts itself in as it takes the lease and out as it ends: what is left over are syncs
  // whose process died in them.
  if (connection.unfinished_syncs - 1 >= CRASHES_BEFORE_QUARANTINE) await quarantine(deps, connection);
  if (connection.status === 'pending_authorization') {
    await releaseLease(deps, connectionId);
    throw new SchedError(
      ErrorCode.CALENDAR_NOT_ACTIVE,
      `${PROVIDER_DISPLAY_NAMES[connection.provider]} ${connection.calendar_id} has not been authorized yet`,
    );
  }
  const stats: SyncStats = { fetched: 0, created: 0, updated: 0, deleted: 0, pushed: 0, conflicts: 0 };
  let cursor = connection.sync_cursor;
  // Where a failure happened decides what it means: a 404 of the listing is the calendar gone.
  let step: FailureStep = 'push';
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
      budget: calendarBudget(deps.calendarLimits),
    };
    const pushes = connection.direction !== 'pull' && context.provider.capabilities.write;
    if (pushes) await pushPending(context);
    step = 'pull';
    if (connection.direction !== 'push') cursor = await pull(context);
    step = 'push';
    if (pushes && context.pushAgain) await pushPending(context);
    step = 'pull';
    await keepExpansionCurrent(context);
    // Under the lease, so two processes never open two channels for one connection.
    await ensureWatch(deps, connection, context.provider, options.log);
    await recordSuccess(context, cursor);
    return stats;
  } catch (error) {
    // Deleted while its changes were being fetched: nothing is left to store them for.
    if (error instanceof ConnectionVanished) return stats;
    const explanation = await recordFailure(
      deps,
      connection,
      error,
      failedAtTokenRefresh(error) ? 'token' : step,
    );
    if (error instanceof ProviderError) throw providerFailure(error, connection.provider, explanation);
    throw error;
  } finally {
    clearInterval(heartbeat);
  }
}

class ConnectionVanished extends Error {}

/** A calendar whose syncs took their process down this many times is not synced again by itself. */
const CRASHES_BEFORE_QUARANTINE = 2;

/**
 * Stops automatic syncs of a connection whose syncs keep killing their process (a calendar too large
 * or too hostile to read): it is left in error until someone asks for a sync again.
 */
async function quarantine(deps: CalendarDeps, connection: ConnectionRow): Promise<never> {
  const crashes = connection.unfinished_syncs - 1;
  const message =
    `synchronization stopped: ${crashes} syncs of this calendar ended with their process ` +
    'before they finished, so it is not synced automatically any more; ask for a sync to try again';
  await deps.db
    .updateTable('calendar_connections')
    .set({
      status: 'error',
      last_error: message,
      next_sync_at: null,
      // A failing connection is not woken by pushes or channel renewals either (the worker's scan).
      failure_count: connection.failure_count + 1,
      unfinished_syncs: 0,
      sync_lease_until: null,
    })
    .where('connection_id', '=', connection.connection_id)
    .execute();
  throw new SchedError(ErrorCode.CALENDAR_NOT_ACTIVE, message);
}

async function releaseLease(deps: CalendarDeps, connectionId: string): Promise<void> {
  await deps.db
    .updateTable('calendar_connections')
    .set({ sync_lease_until: null, unfinished_syncs: 0 })
    .where('connection_id', '=', connectionId)
    .execute();
}

async function connectionExists(deps: CalendarDeps, connectionId: string): Promise<boolean> {
  const row = await deps.db
    .selectFrom('calendar_connections')
    .select('connection_id')
    .where('connection_id', '=', connectionId)
    .executeTakeFirst();
  return row !== undefined;
}

async function claimLease(deps: CalendarDeps, connectionId: string, wait: boolean): Promise<ConnectionRow> {
  const started = Date.now();
  for (;;) {
    const now = deps.clock();
    const row = await deps.db
      .updateTable('calendar_connections')
      .set((eb) => ({
        sync_lease_until: new Date(now + LEASE_MS),
        unfinished_syncs: eb('unfinished_syncs', '+', 1),
      }))
      .where('connection_id', '=', connectionId)
      .where((eb) => eb.or([eb('sync_lease_until', 'is', null), eb('sync_lease_until', '<', new Date(now))]))
      .returningAll()
      .executeTakeFirst();
    if (row) return row;
    if (!(await connectionExists(deps, connectionId)))
      throw new SchedError(ErrorCode.CALENDAR_NOT_FOUND, `no calendar connection ${connectionId}`);
    if (!wait || Date.now() - started > WAIT_FOR_LEASE_MS) {
      throw new SchedError(ErrorCode.SYNC_IN_PROGRESS, 'this calendar is being synchronized right now');
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Warnings about a calendar as a whole kept from one read. */
const CALENDAR_WARNINGS_KEPT = 20;

/**
 * Reads the provider's changes and stores them as they come: each page is expanded on the parser's
 * threads and stored while the next page is fetched, so a calendar is never in memory whole. The
 * cursor is returned (and saved by the caller) only once every page is stored, so a sync stopped
 * midway reads again from the old cursor and loses nothing.
 */
async function pull(context: SyncContext): Promise<string | null> {
  const { deps, connection, provider } = context;
  const knownRows = await deps.db
    .selectFrom('calendar_events')
    .select(['remote_id', 'etag'])
    .where('connection_id', '=', connection.connection_id)
    .execute();
  const state: PullState = {
    held: new Map(knownRows.map((row) => [row.remote_id, row.etag])),
    storedBefore: knownRows.length > 0,
    storedNow: knownRows.length > 0 ? new Set() : null,
    // Without links carrying a remote id, no change read can concern a booking's event (only the
    // push, which ran before, gives links their remote ids).
    settles: await hasLinkedEvents(context),
  };
  let cursor = connection.sync_cursor;
  for (let refusals = 1; ; refusals++) {
    try {
      return await applyListing(context, state, provider.readChanges(cursor, new Map(state.held)));
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error;
      const decision = decideFailure({ code: error.code, step: 'pull', failures: refusals });
      if (decision.action !== 'reset_cursor') throw error;
      // What the refused listing handed over is stored; a full listing compares with that.
      cursor = null;
    }
  }
}

type PullState = {
  /** What the connection holds now: its stored events and what this sync stored, remoteId → etag. */
  held: Map<string, string | null>;
  /** Whether the connection held events before this sync (a first sync has none to replace). */
  storedBefore: boolean;
  /** What this sync stored, where it matters: an event stored before counts as updated once. */
  storedNow: Set<string> | null;
  /** Whether changes may concern bookings' events, which the conflict policy then settles. */
  settles: boolean;
};

/** What the stream of parts gives the storing side: objects to store, or the end of a page. */
type Step = { kind: 'objects'; objects: StoredObject[] } | { kind: 'page'; page: ChangePage };

async function applyListing(
  context: SyncContext,
  state: PullState,
  listing: ChangeStream,
): Promise<string | null> {
  // On a first sync nothing stored is replaced, so the budget alone bounds what is stored and
  // expanding may run a part ahead of storing. Otherwise each page's room is counted in the database
  // just before it is expanded, so what comes before it must be stored by then.
  const steps = expandPages(context, state, readAhead(listing));
  const parts = state.storedBefore ? steps : readAhead(steps);
  try {
    for (;;) {
      const next = await parts.next();
      if (next.done) return next.value.cursor;
      const step = next.value;
      if (step.kind === 'objects') await storeStep(context, state, step.objects);
      else await endPage(context, state, step.page);
    }
  } finally {
    // A sync that fails midway leaves the fetch or expansion under way to finish on its own.
    void parts.return({ full: false, cursor: null }).catch(() => undefined);
  }
}

async function storeStep(context: SyncContext, state: PullState, objects: StoredObject[]): Promise<void> {
  const { deps, connection, stats } = context;
  const fresh = objects.every((object) => !state.held.has(object.remoteId));
  for (const object of objects) {
    if (!state.held.has(object.remoteId)) stats.created++;
    else if (state.storedNow && !state.storedNow.has(object.remoteId)) stats.updated++;
  }
  try {
    await storeObjects(deps.db, connection, objects, deps.clock(), storageLimits(deps.databaseKind), {
      fresh,
    });
  } catch (error) {
    // A foreign-key refusal (23503) here means the connection was deleted during the listing.
    const gone =
      (error as { code?: unknown }).code === '23503' &&
      !(await connectionExists(deps, connection.connection_id));
    throw gone ? new ConnectionVanished() : error;
  }
  for (const object of objects) {
    state.held.set(object.remoteId, object.etag);
    state.storedNow?.add(object.remoteId);
  }
}

/** Once a page's objects are stored: what it says is gone is removed, and bookings' events settled. */
async function endPage(context: SyncContext, state: PullState, page: ChangePage): Promise<void> {
  const { deps, connection, stats } = context;
  const removed = page.removed.filter((remoteId) => state.held.has(remoteId));
  await removeObjects(deps.db, connection.connection_id, removed);
  for (const remoteId of removed) state.held.delete(remoteId);
  stats.deleted += removed.length;
  if (state.settles) await settleBookingEvents(context, page.changed, removed);
}

/**
 * The listing's pages expanded within the sync's budget, a part at a time, each page followed by its
 * end (its removals and settling come once its objects are stored); returns the listing's end.
 */
async function* expandPages(
  context: SyncContext,
  state: PullState,
  pages: ChangeStream,
): AsyncGenerator<Step, ListingEnd, undefined> {
  const { deps, connection, stats } = context;
  const window = expansionWindow(context.now);
  for (;;) {
    const next = await pages.next();
    if (next.done) {
      if (next.value.warnings)
        context.calendarWarnings = next.value.warnings.slice(0, CALENDAR_WARNINGS_KEPT);
      return next.value;
    }
    const page = next.value;
    stats.fetched += page.changed.length;
    if (state.storedBefore && page.changed.length > 0) {
      const replaced = [...page.changed.map((event) => event.remoteId), ...page.removed];
      leaveRoomFor(context, await occurrencesKept(deps.db, connection.connection_id, { replaced }));
    }
    for await (const objects of deps.parser.expandInParts(
      page.changed,
      window,
      context.zone,
      context.budget,
    )) {
      yield { kind: 'objects', objects };
    }
    yield { kind: 'page', page };
  }
}

/** Whether any booking of the connection's resource has its event at the provider known. */
async function hasLinkedEvents(context: SyncContext): Promise<boolean> {
  const row = await context.deps.db
    .selectFrom('booking_calendar_links')
    .select('booking_id')
    .where('connection_id', '=', context.connection.connection_id)
    .where('remote_id', 'is not', null)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** The sync may store no more occurrences than the calendar's budget leaves beside `kept`. */
function leaveRoomFor(context: SyncContext, kept: number): void {
  const { budget } = context;
  budget.occurrences = Math.min(budget.occurrences, Math.max(0, budget.limits.occurrences - kept));
}

/** Series are stored expanded up to a horizon; it moves forward as time passes. */
async function keepExpansionCurrent(context: SyncContext): Promise<void> {
  const { deps, connection, now } = context;
  const until = connection.expanded_until?.getTime() ?? 0;
  const window = expansionWindow(now);
  if (until - now < EXPANDED_FUTURE_MS - REEXPAND_MARGIN_MS && connection.expanded_until !== null) {
    // Every series is written again, replacing what it stored before (this sync's pull included):
    // the room is what the single events leave.
    const single = await occurrencesKept(deps.db, connection.connection_id, { recurring: false });
    context.budget.occurrences = Math.max(0, context.budget.limits.occurrences - single);
    await reexpandSeries(
      deps.db,
      deps.parser,
      connection,
      context.zone,
      window,
      deps.clock(),
      context.budget,
      storageLimits(deps.databaseKind),
    );
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
  const events = await eventWarnings(deps.db, connection.connection_id);
  // What a full read said of the calendar as a whole stands until the next full read.
  const calendar = context.calendarWarnings ?? connection.sync_warnings.calendar ?? [];
  const warnings = { ...events, ...(calendar.length > 0 ? { calendar } : {}) };
  const planned =
    connection.frequency_minutes > 0 ? new Date(now + connection.frequency_minutes * 60_000) : null;
  await deps.db
    .updateTable('calendar_connections')
    .set({
      sync_cursor: cursor,
      last_synced_at: new Date(now),
      // A calendar larger than one sync may read is kept up to the limits, and says so.
      last_error: budgetWarning(context.budget),
      sync_warnings: JSON.stringify(warnings),
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
      unfinished_syncs: 0,
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
 * A failed sync is kept on the connection, and the failure policy says when it is tried again (with
 * backoff, never for refused credentials or a calendar that is gone) and whether the failure webhook
 * fires. Returns the policy's explanation for the user, if it gave one.
 */
async function recordFailure(
  deps: CalendarDeps,
  connection: ConnectionRow,
  error: unknown,
  step: FailureStep,
): Promise<string | undefined> {
  const now = deps.clock();
  const failures = connection.failure_count + 1;
  const decision = decideFailure({
    code: error instanceof ProviderError ? error.code : null,
    step,
    failures,
    retryAfterMs: error instanceof ProviderError ? error.details.retryAfterMs : undefined,
  });
  const message =
    error instanceof ProviderError
      ? failureMessage(connection.provider, error.message, decision.message)
      : error instanceof SchedError
        ? error.message
        : 'internal error during synchronization';
  const status = decision.status ?? 'error';
  await deps.db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('calendar_connections')
      .set({
        status,
        last_error: message,
        failure_count: failures,
        next_sync_at: decision.delayMs === undefined ? null : new Date(now + decision.delayMs),
        ...(decision.action === 'reset_cursor' ? { sync_cursor: null } : {}),
        sync_lease_until: null,
        unfinished_syncs: 0,
      })
      .where('connection_id', '=', connection.connection_id)
      .returningAll()
      .executeTakeFirst();
    const announce =
      decision.announce === 'now' || (decision.announce === 'on_entry' && connection.status !== status);
    if (!row || !announce) return;
    const view = connectionView(row, deps.publicUrl);
    await emitEvent(
      trx,
      connection.organization_id,
      status === 'reauth_required' ? 'calendar.reauth_required' : 'calendar.sync_failed',
      { ...view, error: message },
      now,
    );
  });
  return decision.message;
}
