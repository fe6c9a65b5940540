import type { NotificationRequest, WatchNotification } from '../../port/notifications.js';

type Entry = Record<string, unknown> & { subscriptionId: string };

/**
 * The entries of a Graph notification POST (`{"value":[…]}`, possibly for several subscriptions),
 * keeping those that name a subscription and carry `field` as a string. The body is normally parsed
 * JSON already; text is parsed here.
 */
function entries(body: unknown, field: 'changeType' | 'lifecycleEvent'): Entry[] {
  let value = body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value) as unknown;
    } catch {
      return [];
    }
  }
  const list = (value as { value?: unknown } | null)?.value;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (entry): entry is Entry =>
      typeof entry === 'object' &&
      entry !== null &&
      typeof (entry as Entry).subscriptionId === 'string' &&
      typeof (entry as Record<string, unknown>)[field] === 'string',
  );
}

function notification(entry: Entry, state: WatchNotification['state']): WatchNotification {
  const token = typeof entry.clientState === 'string' ? entry.clientState : null;
  return { channelId: entry.subscriptionId, token, resourceId: null, state };
}

/**
 * Change notifications (created, updated, deleted) at /hooks/outlook. Validation requests carry no
 * body: the route answers those itself.
 */
export function parseGraphNotifications({ body }: NotificationRequest): WatchNotification[] {
  return entries(body, 'changeType').map((entry) => notification(entry, 'changed'));
}

/** Events after which a subscription only keeps delivering once renewed (or, when gone, made anew). */
const RENEW = new Set(['reauthorizationRequired', 'subscriptionRemoved']);

/**
 * Lifecycle notifications at /hooks/outlook/lifecycle: reauthorizationRequired and subscriptionRemoved
 * ask for renewal; `missed` and any other event only for a sync that catches up by delta.
 */
export function parseGraphLifecycle({ body }: NotificationRequest): WatchNotification[] {
  return entries(body, 'lifecycleEvent').map((entry) =>
    notification(entry, RENEW.has(entry.lifecycleEvent as string) ? 'renew' : 'changed'),
  );
}
