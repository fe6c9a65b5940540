import { timingSafeEqual } from 'node:crypto';

export type GoogleNotification = {
  channelId: string;
  /** X-Goog-Channel-Token: the secret given at watch time; null when the channel has none. */
  token: string | null;
  resourceId: string;
  /** `sync` confirms a new channel; `exists` says something changed; `not_exists` that it is gone. */
  state: 'sync' | 'exists' | 'not_exists';
  /** Rises with each message, with gaps: order, not count. */
  messageNumber: number;
  resourceUri: string | null;
  /** From X-Goog-Channel-Expiration (an HTTP date); null when absent or unreadable. */
  expiresAt: number | null;
};

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | null {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== wanted || value === undefined) continue;
    const first = Array.isArray(value) ? value[0] : value;
    return first === undefined ? null : first.trim();
  }
  return null;
}

const STATES = new Set(['sync', 'exists', 'not_exists']);

/**
 * Reads a Google push notification. Calendar notifications carry no body: everything is in the
 * X-Goog-* headers, and the receiver then lists changes with its sync token. Null when a required
 * header is missing or malformed, so the route can answer without touching storage.
 */
export function parseGoogleNotification(headers: Headers): GoogleNotification | null {
  const channelId = header(headers, 'x-goog-channel-id');
  const resourceId = header(headers, 'x-goog-resource-id');
  const state = header(headers, 'x-goog-resource-state');
  const number = header(headers, 'x-goog-message-number');
  if (!channelId || !resourceId || state === null || !STATES.has(state) || number === null) return null;
  if (!/^\d{1,16}$/.test(number)) return null;
  const expiration = header(headers, 'x-goog-channel-expiration');
  const expiresAt = expiration === null ? NaN : Date.parse(expiration);
  return {
    channelId,
    token: header(headers, 'x-goog-channel-token'),
    resourceId,
    state: state as GoogleNotification['state'],
    messageNumber: Number(number),
    resourceUri: header(headers, 'x-goog-resource-uri'),
    expiresAt: Number.isNaN(expiresAt) ? null : expiresAt,
  };
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Whether a notification belongs to the stored channel: its id, resource id and secret all match. */
export function matchesGoogleChannel(
  notification: GoogleNotification,
  channel: { id: string; resourceId: string | null; secret: string },
): boolean {
  return (
    notification.channelId === channel.id &&
    channel.resourceId !== null &&
    same(notification.resourceId, channel.resourceId) &&
    notification.token !== null &&
    same(notification.token, channel.secret)
  );
}
