import type { WatchChannel, WatchRequest } from '../../port/provider.js';
import { ProviderError } from '../../../integrations/index.js';
import { type OutlookClient, graphError } from './outlook-client.js';

/** Outlook event subscriptions live at most 4230 minutes in older docs, 10080 in current ones. */
export const DEFAULT_MAX_SUBSCRIPTION_MINUTES = 4230;
/** Graph lengthens anything shorter to 45 minutes. */
const MIN_SUBSCRIPTION_MINUTES = 45;
/** Clocks differ; asking for exactly the maximum would be refused by a server a little behind us. */
const CLOCK_MARGIN_MS = 5 * 60_000;

export type SubscriptionTarget = {
  client: OutlookClient;
  /** `me/events`: the only documented event resource (every calendar of the mailbox). */
  resource: string;
  maxMinutes: number;
  now: () => number;
};

function expiration(target: SubscriptionTarget, ttlSeconds: number): string {
  const now = target.now();
  const wanted = now + Math.max(MIN_SUBSCRIPTION_MINUTES * 60, ttlSeconds) * 1000;
  const allowed = now + target.maxMinutes * 60_000 - CLOCK_MARGIN_MS;
  return new Date(Math.min(wanted, allowed)).toISOString();
}

function channelOf(body: Record<string, unknown>): WatchChannel {
  const id = body.id;
  const expiresAt = typeof body.expirationDateTime === 'string' ? Date.parse(body.expirationDateTime) : NaN;
  if (typeof id !== 'string' || Number.isNaN(expiresAt)) {
    throw new ProviderError('BAD_RESPONSE', 'the subscription answer has no id or expirationDateTime');
  }
  return { id, resourceId: null, expiresAt };
}

/** POST /subscriptions; Graph first calls the notification and lifecycle URLs to validate them. */
export async function createSubscription(
  target: SubscriptionTarget,
  request: WatchRequest,
): Promise<WatchChannel> {
  const body = await target.client.json({
    method: 'POST',
    path: 'subscriptions',
    body: {
      changeType: 'created,updated,deleted',
      notificationUrl: request.callbackUrl,
      lifecycleNotificationUrl: request.lifecycleUrl,
      resource: target.resource,
      expirationDateTime: expiration(target, request.ttlSeconds),
      clientState: request.secret,
      latestSupportedTlsVersion: 'v1_2',
    },
  });
  return channelOf(body);
}

/** PATCH the expiry; a subscription Graph has already dropped (404) is created anew. */
export async function renewSubscription(
  target: SubscriptionTarget,
  channel: WatchChannel,
  request: WatchRequest,
): Promise<WatchChannel> {
  const path = `subscriptions/${encodeURIComponent(channel.id)}`;
  const response = await target.client.send({
    method: 'PATCH',
    path,
    body: { expirationDateTime: expiration(target, request.ttlSeconds) },
  });
  if (response.status === 404) return createSubscription(target, request);
  if (response.status !== 200) throw graphError(response, `PATCH ${path}`);
  return channelOf(response.body as Record<string, unknown>);
}

export async function deleteSubscription(target: SubscriptionTarget, channel: WatchChannel): Promise<void> {
  const path = `subscriptions/${encodeURIComponent(channel.id)}`;
  const response = await target.client.send({ method: 'DELETE', path });
  if (response.status === 404 || (response.status >= 200 && response.status < 300)) return;
  throw graphError(response, `DELETE ${path}`);
}
