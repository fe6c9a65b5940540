import { sql } from 'kysely';
import { announce, connectionActivated, queueFutureBookings } from './activation.js';
import { startAuthorization, type AuthorizationView } from './authorization.js';
import { ProviderError } from '../../integrations/index.js';
import type { CalendarProviderName, ConnectionRow, Db } from '../../storage/database.js';
import { recordAudit } from '../../services/audit.js';
import type { Actor } from '../../services/context.js';
import { ErrorCode, SchedError } from '../../services/errors.js';
import { findResource } from '../../services/resources.js';
import {
  connectionView,
  connectorFor,
  PROVIDER_DISPLAY_NAMES,
  providerFailure,
  releaseAtProvider,
  resolveSync,
  type CalendarDeps,
  type ConnectionView,
  type PreparedConnection,
  type SyncSettings,
} from './connection-model.js';

export * from './connection-model.js';

export type ConnectInput = { resource_id: string; sync?: Partial<SyncSettings> } & Record<string, unknown>;

export async function connectCalendar(
  deps: CalendarDeps,
  actor: Actor,
  provider: CalendarProviderName,
  input: ConnectInput,
  options: { publicUrl: string },
): Promise<ConnectionView | AuthorizationView> {
  const connector = connectorFor(deps, provider);
  const sync = resolveSync(provider, connector.readOnly, input.sync);
  await findResource(deps.db, actor, input.resource_id, 'resource_id');
  if (connector.oauth && typeof input.oauth_token !== 'string') {
    const calendarId = typeof input.calendar_id === 'string' ? input.calendar_id : undefined;
    return startAuthorization(
      deps,
      actor,
      provider,
      { resource_id: input.resource_id, calendar_id: calendarId },
      sync,
      deps.publicUrl ?? options.publicUrl,
    );
  }
  let prepared: PreparedConnection;
  try {
    prepared = await connector.prepare(input);
  } catch (error) {
    if (error instanceof ProviderError) throw providerFailure(error, provider, undefined, 'url');
    throw error;
  }
  const now = deps.clock();
  return deps.db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('calendar_connections')
      .values({
        organization_id: actor.organizationId,
        resource_id: input.resource_id,
        provider,
        calendar_id: prepared.calendarId,
        direction: sync.direction,
        frequency_minutes: sync.frequency_minutes,
        realtime: sync.realtime,
        conflict_policy: sync.conflict_policy,
        blocks_availability: sync.blocks_availability,
        credentials_sealed: deps.secretBox.sealJson(prepared.credentials),
        settings: JSON.stringify(prepared.settings),
        next_sync_at: new Date(now),
      })
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row) {
      // The unique (resource, provider, calendar) key decided it; for an ICS feed the calendar id is a
      // digest of its URL, so the same feed connected twice lands here. Name the connection it would repeat.
      const existing = await trx
        .selectFrom('calendar_connections')
        .select('connection_id')
        .where('resource_id', '=', input.resource_id)
        .where('provider', '=', provider)
        .where('calendar_id', '=', prepared.calendarId)
        .executeTakeFirst();
      const which = existing ? `connection ${existing.connection_id}` : 'another connection';
      throw new SchedError(
        ErrorCode.CALENDAR_ALREADY_CONNECTED,
        `${PROVIDER_DISPLAY_NAMES[provider]} ${prepared.calendarId} is already connected to resource ${input.resource_id} as ${which}`,
      );
    }
    return connectionActivated(trx, actor, row, now, deps.publicUrl);
  });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `{calendar_id}` in a path: the connection id, or the provider's calendar id where that names exactly
 * one connection of the organization (`resource_id` narrows it).
 */
export async function findConnection(
  db: Db,
  actor: Actor,
  provider: CalendarProviderName,
  calendarId: string,
  resourceId?: string,
): Promise<ConnectionRow> {
  let query = db
    .selectFrom('calendar_connections')
    .selectAll()
    .where('organization_id', '=', actor.organizationId)
    .where('provider', '=', provider);
  if (resourceId) query = query.where('resource_id', '=', resourceId);
  if (UUID.test(calendarId)) {
    const byId = await query.where('connection_id', '=', calendarId).executeTakeFirst();
    if (byId) return byId;
  }
  const rows = await query.where('calendar_id', '=', calendarId).limit(2).execute();
  const [first, second] = rows;
  if (!first) {
    throw new SchedError(
      ErrorCode.CALENDAR_NOT_FOUND,
      `no ${PROVIDER_DISPLAY_NAMES[provider]} connection ${calendarId}`,
    );
  }
  if (second) {
    throw new SchedError(
      ErrorCode.AMBIGUOUS_CALENDAR,
      `calendar ${calendarId} is connected to several resources; use the connection_id or add ?resource_id=`,
    );
  }
  return first;
}

export async function listConnections(
  { db, publicUrl }: Pick<CalendarDeps, 'db' | 'publicUrl'>,
  actor: Actor,
  query: { resource_id?: string | undefined },
): Promise<{ calendars: ConnectionView[] }> {
  let select = db
    .selectFrom('calendar_connections')
    .selectAll()
    .where('organization_id', '=', actor.organizationId)
    .orderBy('created_at')
    .orderBy('connection_id');
  if (query.resource_id) select = select.where('resource_id', '=', query.resource_id);
  const rows = await select.execute();
  return { calendars: rows.map((row) => connectionView(row, publicUrl)) };
}

export async function updateConnection(
  deps: CalendarDeps,
  actor: Actor,
  provider: CalendarProviderName,
  calendarId: string,
  patch: { sync?: Partial<SyncSettings> | undefined },
  resourceId?: string,
): Promise<ConnectionView> {
  const current = await findConnection(deps.db, actor, provider, calendarId, resourceId);
  const connector = connectorFor(deps, provider);
  const base = connectionView(current, deps.publicUrl).sync;
  const sync = resolveSync(provider, connector.readOnly, patch.sync, base);
  const now = deps.clock();
  return deps.db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('calendar_connections')
      .set({
        direction: sync.direction,
        frequency_minutes: sync.frequency_minutes,
        realtime: sync.realtime,
        conflict_policy: sync.conflict_policy,
        blocks_availability: sync.blocks_availability,
        next_sync_at: sync.frequency_minutes === 0 ? null : new Date(now),
        updated_at: new Date(now),
      })
      .where('connection_id', '=', current.connection_id)
      .returningAll()
      .executeTakeFirstOrThrow();
    if (sync.blocks_availability !== current.blocks_availability) {
      // Occurrences of Sched's own bookings never block; the rest follow the connection's setting.
      await sql`
        update calendar_occurrences o set blocks = ${sync.blocks_availability}
          and o.status <> 'cancelled' and o.transparency = 'opaque'
          and not exists (select 1 from calendar_events e where e.event_id = o.event_id and e.booking_id is not null)
        where o.connection_id = ${current.connection_id}`.execute(trx);
    }
    if (current.direction === 'pull' && sync.direction !== 'pull') await queueFutureBookings(trx, row, now);
    await recordAudit(trx, actor, {
      action: 'calendar.updated',
      targetType: 'calendar_connection',
      targetId: row.connection_id,
      details: { before: base, after: sync },
    });
    return connectionView(row, deps.publicUrl);
  });
}

export async function disconnectCalendar(
  deps: CalendarDeps,
  actor: Actor,
  provider: CalendarProviderName,
  calendarId: string,
  resourceId?: string,
): Promise<{ message: string }> {
  const row = await findConnection(deps.db, actor, provider, calendarId, resourceId);
  await releaseAtProvider(deps, row);
  const now = deps.clock();
  await deps.db.transaction().execute(async (trx) => {
    // Deleting the row erases the sealed credentials with it; events, occurrences, links and open
    // conflicts go by cascade. Bookings stay.
    await trx.deleteFrom('calendar_connections').where('connection_id', '=', row.connection_id).execute();
    await announce(trx, actor, row, 'calendar.disconnected', now, deps.publicUrl);
  });
  return { message: `${PROVIDER_DISPLAY_NAMES[provider]} disconnected successfully.` };
}
