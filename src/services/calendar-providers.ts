import type { CalendarProviderName } from '../storage/database.js';

/** Every calendar system Sched connects to, and what it can do. */
export const PROVIDER_NAMES = ['google', 'outlook', 'caldav', 'ics'] as const;

/** The names the contract uses in messages. */
export const PROVIDER_DISPLAY_NAMES: Record<CalendarProviderName, string> = {
  google: 'Google Calendar',
  outlook: 'Outlook Calendar',
  caldav: 'CalDAV Calendar',
  ics: 'ICS Feed',
};

/** Providers that can call us back when a calendar changes. */
const PUSH_PROVIDERS: ReadonlySet<CalendarProviderName> = new Set(['google', 'outlook']);

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Why push notifications cannot reach this server from `provider`, or undefined when they can.
 * Google and Graph deliver only to https addresses; a loopback http address is allowed for local
 * development against the emulators, which call back on the same machine.
 */
export function pushUnavailableReason(
  provider: CalendarProviderName,
  publicUrl: string | undefined,
): string | undefined {
  if (!PUSH_PROVIDERS.has(provider)) return undefined;
  const name = PROVIDER_DISPLAY_NAMES[provider];
  if (!publicUrl) {
    return `${name} push notifications need SCHED_PUBLIC_URL (an https address this server is reached at); connections are polled instead`;
  }
  const url = new URL(publicUrl);
  if (url.protocol !== 'https:' && !isLoopback(url.hostname)) {
    return `${name} sends push notifications only to https addresses, and SCHED_PUBLIC_URL is ${url.origin}; connections are polled instead`;
  }
  return undefined;
}

export type PushView = {
  /** on: a channel is kept; off: realtime is turned off; unavailable: see reason (polling continues). */
  status: 'on' | 'off' | 'unavailable';
  reason: string | null;
};

export function pushView(
  provider: CalendarProviderName,
  realtime: boolean,
  publicUrl: string | undefined,
): PushView {
  if (!PUSH_PROVIDERS.has(provider)) {
    return {
      status: 'unavailable',
      reason: `${PROVIDER_DISPLAY_NAMES[provider]} has no push notifications; it is polled at frequency_minutes`,
    };
  }
  if (!realtime) return { status: 'off', reason: null };
  const reason = pushUnavailableReason(provider, publicUrl);
  return reason ? { status: 'unavailable', reason } : { status: 'on', reason: null };
}
