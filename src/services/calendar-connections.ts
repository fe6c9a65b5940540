import { sql } from 'kysely';
import type { AccessTokenSource, CalendarProvider } from '../domain/calendar-provider.js';
import type { OAuthClient } from '../providers/oauth/oauth-client.js';
import { ConnectionTokens, type OAuthCredentials } from './calendar-tokens.js';
import { stopWatch } from './calendar-watches.js';
import { startAuthorization, type AuthorizationView } from './calendar-oauth.js';
import { ProviderError } from '../providers/provider-error.js';
import type { SecretBox } from '../security/secret-box.js';
import type {
  CalendarProviderName,
  ConflictPolicy,
  ConnectionRow,
  ConnectionStatus,
  Db,
  SyncDirection,
} from '../storage/database.js';
import { recordAudit } from './audit.js';
import type { Actor, ServiceDeps } from './context.js';
import { ErrorCode, SchedError, validationError } from './errors.js';
import { resourceNotFound } from './resources.js';
import { emitEvent } from './webhook-events.js';

export const PROVIDER_NAMES = ['google', 'outlook', 'caldav', 'ics'] as const;

/** The names the contract uses in messages. */
export const PROVIDER_DISPLAY_NAMES: Record<CalendarProviderName, string> = {
  google: 'Google Calendar',
  outlook: 'Outlook Calendar',
  caldav: 'CalDAV Calendar',
  ics: 'ICS Feed',
};

export type SyncSettings = {
  direction: SyncDirection;
  frequency_minutes: number;
  realtime: boolean;
  conflict_policy: ConflictPolicy;
  blocks_availability: boolean;
};

/**
 * Sched is the system of record for bookings, so by default a change made at the provider to a
 * booking's event is written back over (sched_wins); teams that want the calendar to lead choose
 * provider_wins, last_writer_wins or manual.
 */
export const DEFAULT_SYNC: SyncSettings = {
  direction: 'two_way',
  frequency_minutes: 15,
  realtime: true,
  conflict_policy: 'sched_wins',
  blocks_availability: true,
};

/** What a connector found and checked at connect time. */
export type PreparedConnection = {
  /** The provider's id of the calendar: a CalDAV collection URL, a Google calendar id. */
  calendarId: string;
  /** Non-secret details kept in the clear (collection URL, display name). */
  settings: Record<string, unknown>;
  /** Secrets, sealed before they are stored. */
  credentials: Record<string, unknown>;
};

/** One per provider: checks what a user gave at connect, and opens the provider for a sync. */
export interface Connector {
  readonly readOnly: boolean;
  /** OAuth providers: the client that authorizes and refreshes. */
  readonly oauth?: OAuthClient;
  prepare(input: Record<string, unknown>): Promise<PreparedConnection>;
  open(
    settings: Record<string, unknown>,
    credentials: Record<string, unknown>,
    context?: { tokens?: AccessTokenSource },
  ): CalendarProvider;
}

export type Connectors = Partial<Record<CalendarProviderName, Connector>>;

export type CalendarDeps = ServiceDeps & {
  secretBox: SecretBox;
  connectors: Connectors;
  /** SCHED_PUBLIC_URL: where providers send push notifications and users return after consent. */
  publicUrl?: string | undefined;
};

export type ConnectionView = {
  connection_id: string;
  provider: CalendarProviderName;
  resource_id: string;
  calendar_id: string;
  status: ConnectionStatus;
  sync: SyncSettings;
  last_synced_at: string | null;
  last_error: string | null;
  display_name: string | null;
  created_at: string;
  updated_at: string;
};

export function connectionView(row: ConnectionRow): ConnectionView {
  const settings = row.settings;
  return {
    connection_id: row.connection_id,
    provider: row.provider,
    resource_id: row.resource_id,
    calendar_id: row.calendar_id,
    status: row.status,
    sync: {
      direction: row.direction,
      frequency_minutes: row.frequency_minutes,
      realtime: row.realtime,
      conflict_policy: row.conflict_policy,
      blocks_availability: row.blocks_availability,
    },
    last_synced_at: row.last_synced_at?.toISOString() ?? null,
    last_error: row.last_error,
    display_name: typeof settings.display_name === 'string' ? settings.display_name : null,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/** Maps a provider failure onto the contract's 502 PROVIDER_* problems, or a 400 for a refused URL. */
export function providerFailure(error: ProviderError, provider: CalendarProviderName): SchedError {
  const name = PROVIDER_DISPLAY_NAMES[provider];
  if (error.code === 'URL_REFUSED') return validationError('url', error.message);
  const code =
    {
      AUTH_FAILED: ErrorCode.PROVIDER_AUTH_FAILED,
      FORBIDDEN: ErrorCode.PROVIDER_FORBIDDEN,
      NOT_FOUND: ErrorCode.PROVIDER_NOT_FOUND,
      UNAVAILABLE: ErrorCode.PROVIDER_UNAVAILABLE,
      TIMEOUT: ErrorCode.PROVIDER_TIMEOUT,
      NETWORK: ErrorCode.PROVIDER_NETWORK,
      RATE_LIMITED: ErrorCode.PROVIDER_RATE_LIMITED,
      QUOTA_EXCEEDED: ErrorCode.PROVIDER_QUOTA_EXCEEDED,
      BAD_RESPONSE: ErrorCode.PROVIDER_BAD_RESPONSE,
      REJECTED: ErrorCode.PROVIDER_REJECTED,
    }[error.code as string] ?? ErrorCode.PROVIDER_ERROR;
  return new SchedError(code, `${name}: ${error.message}`);
}

export function connectorFor(deps: CalendarDeps, provider: CalendarProviderName): Connector {
  const connector = deps.connectors[provider];
  if (!connector) {
    throw validationError('provider', `${PROVIDER_DISPLAY_NAMES[provider]} is not configured on this server`);
  }
  return connector;
}

export function resolveSync(
  provider: CalendarProviderName,
  readOnly: boolean,
  given: Partial<SyncSettings> | undefined,
  base: SyncSettings = DEFAULT_SYNC,
): SyncSettings {
  const sync = {
    ...base,
    ...(readOnly && !given?.direction ? { direction: 'pull' as const } : {}),
    ...given,
  };
  if (readOnly && sync.direction !== 'pull') {
    throw validationError(
      'sync.direction',
      `${PROVIDER_DISPLAY_NAMES[provider]} is read-only: the direction can only be "pull"`,
    );
  }
  return sync;
}

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
  await requireResource(deps.db, actor, input.resource_id);
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
    if (error instanceof ProviderError) throw providerFailure(error, provider);
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
        credentials_sealed: deps.secretBox.seal(JSON.stringify(prepared.credentials)),
        settings: JSON.stringify(prepared.settings),
        next_sync_at: new Date(now),
      })
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row) {
      throw new SchedError(
        ErrorCode.CALENDAR_ALREADY_CONNECTED,
        `${PROVIDER_DISPLAY_NAMES[provider]} ${prepared.calendarId} is already connected to resource ${input.resource_id}`,
      );
    }
    return connectionActivated(trx, actor, row, now);
  });
}

/** The audit entry and the webhook event of a connection made or removed. */
async function announce(
  db: Db,
  actor: Pick<Actor, 'organizationId' | 'label'>,
  row: ConnectionRow,
  type: 'calendar.connected' | 'calendar.disconnected',
  now: number,
): Promise<ConnectionView> {
  const view = connectionView(row);
  await recordAudit(db, actor, {
    action: type,
    targetType: 'calendar_connection',
    targetId: row.connection_id,
    details: { provider: row.provider, calendar_id: row.calendar_id, resource_id: row.resource_id },
  });
  await emitEvent(db, row.organization_id, type, view, now);
  return view;
}

/** A connection that can sync now: it receives the resource's upcoming bookings, and is announced. */
export async function connectionActivated(
  db: Db,
  actor: Pick<Actor, 'organizationId' | 'label'>,
  row: ConnectionRow,
  now: number,
): Promise<ConnectionView> {
  if (row.direction !== 'pull') await queueFutureBookings(db, row, now);
  return announce(db, actor, row, 'calendar.connected', now);
}

/** A new connection receives the resource's bookings that have not ended yet. */
export async function queueFutureBookings(db: Db, row: ConnectionRow, now: number): Promise<void> {
  await sql`
    insert into booking_calendar_links (booking_id, connection_id, organization_id)
    select b.booking_id, ${row.connection_id}::uuid, ${row.organization_id}::uuid
    from bookings b
    where b.organization_id = ${row.organization_id} and b.status = 'confirmed'
      and ${row.resource_id}::uuid = any(b.resource_ids) and b.end_time > ${new Date(now)}
    on conflict do nothing`.execute(db);
}

async function requireResource(db: Db, actor: Actor, resourceId: string): Promise<void> {
  const found = await db
    .selectFrom('resources')
    .select('resource_id')
    .where('resource_id', '=', resourceId)
    .where('organization_id', '=', actor.organizationId)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  if (!found) throw resourceNotFound(resourceId, 'resource_id');
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
  db: Db,
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
  return { calendars: rows.map(connectionView) };
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
  const base = connectionView(current).sync;
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
    return connectionView(row);
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
    await announce(trx, actor, row, 'calendar.disconnected', now);
  });
  return { message: `${PROVIDER_DISPLAY_NAMES[provider]} disconnected successfully.` };
}

/**
 * What disconnecting owes the provider, best effort (the connection goes either way): its push channel
 * stopped, and its grant revoked where the provider has a revocation endpoint (Google).
 */
async function releaseAtProvider(deps: CalendarDeps, row: ConnectionRow): Promise<void> {
  if (!row.credentials_sealed) return;
  try {
    await stopWatch(deps.db, row.connection_id, openProvider(deps, row));
  } catch {
    // Unreachable provider or refused token: the channel expires by itself.
  }
  const client = deps.connectors[row.provider]?.oauth;
  if (!client) return;
  try {
    const credentials = JSON.parse(deps.secretBox.open(row.credentials_sealed)) as OAuthCredentials;
    await client.revoke(credentials.refresh_token ?? credentials.access_token);
  } catch {
    // Already revoked or expired: nothing left to revoke.
  }
}

export function openProvider(deps: CalendarDeps, row: ConnectionRow): CalendarProvider {
  const connector = connectorFor(deps, row.provider);
  if (row.status === 'pending_authorization' || !row.credentials_sealed) {
    throw new SchedError(
      ErrorCode.CALENDAR_NOT_ACTIVE,
      `${PROVIDER_DISPLAY_NAMES[row.provider]} ${row.calendar_id} has not been authorized yet`,
    );
  }
  const credentials = JSON.parse(deps.secretBox.open(row.credentials_sealed)) as Record<string, unknown>;
  const tokens = connector.oauth
    ? new ConnectionTokens(
        deps.db,
        deps.secretBox,
        row.connection_id,
        connector.oauth,
        credentials as unknown as OAuthCredentials,
      )
    : undefined;
  return connector.open(
    { ...row.settings, calendar_id: row.calendar_id },
    credentials,
    tokens ? { tokens } : {},
  );
}
