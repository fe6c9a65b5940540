import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { sql } from 'kysely';
import { canPush, type CalendarProvider, type WatchChannel, type WatchRequest } from '../port/provider.js';
import {
  NOTIFICATION_PARSERS,
  type NotificationRequest,
  type WatchNotification,
} from '../port/notifications.js';
import type { ConnectionRow, Db } from '../../storage/database.js';
import type { CalendarDeps } from './connection-model.js';
import { pushUnavailableReason } from '../policy/push-availability.js';
import { decideFailure } from '../policy/failure-policy.js';
import { ProviderError } from '../../integrations/index.js';

/** Asked of providers; Graph grants less (about 3 days), Google up to its own limit. */
export const WATCH_TTL_SECONDS = 7 * 24 * 3600;
/** A channel is renewed once it has less than this left, so a missed sync or two costs nothing. */
export const RENEW_BEFORE_MS = 24 * 3600_000;

const CALENDAR_PUSH_CHANNEL = 'sched_calendar_push';

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function sameSecret(given: string | undefined, hash: string): boolean {
  if (!given) return false;
  const a = Buffer.from(hashSecret(given), 'hex');
  const b = Buffer.from(hash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

function watchRequest(publicUrl: string, provider: string): WatchRequest {
  return {
    callbackUrl: `${publicUrl}/hooks/${provider}`,
    lifecycleUrl: `${publicUrl}/hooks/outlook/lifecycle`,
    secret: randomBytes(24).toString('base64url'),
    ttlSeconds: WATCH_TTL_SECONDS,
  };
}

type WatchRow = { channel_id: string; resource_id: string | null; expires_at: Date; renew_now: boolean };

function channelOf(row: WatchRow): WatchChannel {
  return { id: row.channel_id, resourceId: row.resource_id, expiresAt: row.expires_at.getTime() };
}

/**
 * Keeps one live push channel per realtime connection: made on the first sync, renewed a day before
 * it expires or when a lifecycle notification asks, stopped when realtime is turned off. A failure
 * here never fails the sync: polling at frequency_minutes still finds every change, and the channel
 * is tried again at the next sync.
 */
export async function ensureWatch(
  deps: CalendarDeps,
  connection: ConnectionRow,
  provider: CalendarProvider,
  log: (message: string, error: unknown) => void = () => {},
): Promise<void> {
  if (!canPush(provider)) return;
  const row = await deps.db
    .selectFrom('calendar_watches')
    .select(['channel_id', 'resource_id', 'expires_at', 'renew_now'])
    .where('connection_id', '=', connection.connection_id)
    .executeTakeFirst();
  if (!connection.realtime || !deps.publicUrl || pushUnavailableReason(connection.provider, deps.publicUrl)) {
    if (row) await stopWatch(deps.db, connection.connection_id, provider, row);
    return;
  }
  const now = deps.clock();
  if (row && !row.renew_now && row.expires_at.getTime() - now > RENEW_BEFORE_MS) return;
  const request = watchRequest(deps.publicUrl, connection.provider);
  try {
    const channel = row
      ? await provider.renewWatch(channelOf(row), request)
      : await provider.startWatch(request);
    const kept = row !== undefined && channel.id === row.channel_id;
    await deps.db
      .insertInto('calendar_watches')
      .values({
        connection_id: connection.connection_id,
        provider: connection.provider,
        channel_id: channel.id,
        resource_id: channel.resourceId,
        secret_hash: hashSecret(request.secret),
        expires_at: new Date(channel.expiresAt),
        renew_now: false,
      })
      .onConflict((oc) =>
        oc.column('connection_id').doUpdateSet({
          channel_id: channel.id,
          resource_id: channel.resourceId,
          expires_at: new Date(channel.expiresAt),
          renew_now: false,
          // A renewed Graph subscription keeps its clientState; a new channel has the new secret.
          ...(kept ? {} : { secret_hash: hashSecret(request.secret) }),
        }),
      )
      .execute();
  } catch (error) {
    log('push channel could not be set up; polling continues', error);
    const code = error instanceof ProviderError ? error.code : null;
    if (row && decideFailure({ code, step: 'watch', failures: 1 }).action === 'retry') {
      await deps.db
        .updateTable('calendar_watches')
        .set({ renew_now: true })
        .where('connection_id', '=', connection.connection_id)
        .execute();
    }
  }
}

/** Stops the connection's channel at the provider (best effort) and forgets it. */
export async function stopWatch(
  db: Db,
  connectionId: string,
  provider: CalendarProvider,
  row?: WatchRow,
): Promise<void> {
  const watch =
    row ??
    (await db
      .selectFrom('calendar_watches')
      .select(['channel_id', 'resource_id', 'expires_at', 'renew_now'])
      .where('connection_id', '=', connectionId)
      .executeTakeFirst());
  if (!watch) return;
  if (canPush(provider)) await provider.stopWatch(channelOf(watch)).catch(() => undefined);
  await db.deleteFrom('calendar_watches').where('connection_id', '=', connectionId).execute();
}

/** A notification only ever means "sync this connection soon": it is due now, and the workers hear of it. */
export async function requestSync(deps: CalendarDeps, connectionIds: readonly string[]): Promise<number> {
  if (connectionIds.length === 0) return 0;
  const rows = await deps.db
    .updateTable('calendar_connections')
    .set((eb) => ({ next_sync_at: new Date(deps.clock()), sync_requests: eb('sync_requests', '+', 1) }))
    .where('connection_id', 'in', connectionIds)
    .where('status', 'in', ['active', 'error'])
    .returning('connection_id')
    .execute();
  for (const row of rows) {
    await sql`select pg_notify(${CALENDAR_PUSH_CHANNEL}, ${row.connection_id})`.execute(deps.db);
  }
  return rows.length;
}

/** The channels of one notification body, found in one query however many items it has. */
async function findWatches(db: Db, provider: 'google' | 'outlook', channelIds: readonly string[]) {
  if (channelIds.length === 0) return new Map<string, WatchLookup>();
  const rows = await db
    .selectFrom('calendar_watches')
    .select(['channel_id', 'connection_id', 'resource_id', 'secret_hash'])
    .where('provider', '=', provider)
    .where('channel_id', 'in', [...new Set(channelIds)])
    .execute();
  return new Map(rows.map((row) => [row.channel_id, row]));
}

type WatchLookup = { connection_id: string; resource_id: string | null; secret_hash: string };

/** At most this many notifications of one request are looked at. */
const MAX_NOTIFICATIONS = 1000;

/**
 * Acts on the notifications that name a channel we hold, with its secret and, where it has one, its
 * resource id; anything else (an unknown or stopped channel, a forged call) is ignored. Returns how
 * many were held, and how many connections were made due. The work is bounded whatever the body:
 * at most MAX_NOTIFICATIONS items, one lookup query, one renewal update and one sync request.
 */
async function acceptNotifications(
  deps: CalendarDeps,
  provider: 'google' | 'outlook',
  notifications: readonly WatchNotification[],
): Promise<{ held: number; due: number }> {
  const considered = notifications.slice(0, MAX_NOTIFICATIONS);
  const watches = await findWatches(
    deps.db,
    provider,
    considered.map((notification) => notification.channelId),
  );
  const due = new Set<string>();
  const renew = new Set<string>();
  let held = 0;
  for (const notification of considered) {
    const watch = watches.get(notification.channelId);
    if (!watch || !sameSecret(notification.token ?? undefined, watch.secret_hash)) continue;
    if (watch.resource_id && notification.resourceId !== watch.resource_id) continue;
    held++;
    // A removed channel is recreated when its renewal answers 404.
    if (notification.state === 'renew') renew.add(watch.connection_id);
    // "confirmed" only says that a new channel works.
    if (notification.state !== 'confirmed') due.add(watch.connection_id);
  }
  if (renew.size > 0) {
    await deps.db
      .updateTable('calendar_watches')
      .set({ renew_now: true })
      .where('connection_id', 'in', [...renew])
      .execute();
  }
  return { held, due: await requestSync(deps, [...due]) };
}

/** Google sends only headers. */
export async function acceptGoogleNotification(
  deps: CalendarDeps,
  headers: NotificationRequest['headers'],
): Promise<'accepted' | 'ignored'> {
  const parsed = NOTIFICATION_PARSERS.google({ headers, body: null });
  const { held } = await acceptNotifications(deps, 'google', parsed);
  return held > 0 ? 'accepted' : 'ignored';
}

/** Graph change notifications: each must name a subscription we hold and carry its clientState. */
export async function acceptOutlookNotifications(deps: CalendarDeps, body: unknown): Promise<number> {
  const parsed = NOTIFICATION_PARSERS.outlook({ headers: {}, body });
  return (await acceptNotifications(deps, 'outlook', parsed)).due;
}

/**
 * Graph lifecycle notifications: reauthorizationRequired and subscriptionRemoved mark the channel for
 * renewal; missed and all others catch up by delta. Both ways the connection syncs at once.
 */
export async function acceptOutlookLifecycle(deps: CalendarDeps, body: unknown): Promise<number> {
  const parsed = NOTIFICATION_PARSERS.outlookLifecycle({ headers: {}, body });
  return (await acceptNotifications(deps, 'outlook', parsed)).due;
}
