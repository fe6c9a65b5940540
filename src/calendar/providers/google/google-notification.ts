import type { NotificationRequest, WatchNotification } from '../../port/notifications.js';

function header(headers: NotificationRequest['headers'], name: string): string | null {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name || value === undefined) continue;
    const first = Array.isArray(value) ? value[0] : value;
    return first === undefined ? null : first.trim();
  }
  return null;
}

const STATES: Readonly<Record<string, WatchNotification['state']>> = {
  sync: 'confirmed',
  exists: 'changed',
  not_exists: 'changed',
};

/**
 * Reads a Google push notification. Calendar notifications carry no body: everything is in the
 * X-Goog-* headers, and the receiver then lists changes with its sync token. Channel id, resource id,
 * resource state and message number are always sent; without any of them, or with a state Google does
 * not send, the request is no notification.
 */
export function parseGoogleNotification({ headers }: NotificationRequest): WatchNotification[] {
  const channelId = header(headers, 'x-goog-channel-id');
  const resourceId = header(headers, 'x-goog-resource-id');
  const state = header(headers, 'x-goog-resource-state');
  const number = header(headers, 'x-goog-message-number');
  if (!channelId || !resourceId || state === null || !Object.hasOwn(STATES, state)) return [];
  if (number === null || !/^\d{1,16}$/.test(number)) return [];
  return [{ channelId, token: header(headers, 'x-goog-channel-token'), resourceId, state: STATES[state]! }];
}
