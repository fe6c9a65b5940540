import { CALENDAR_REGISTRY, PROVIDER_DISPLAY_NAMES } from '../../integrations/index.js';
import type { CalendarProviderName } from '../../storage/database.js';

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
  const { capabilities } = CALENDAR_REGISTRY[provider];
  if (!capabilities.push) return undefined;
  const name = PROVIDER_DISPLAY_NAMES[provider];
  if (!publicUrl) {
    return `${name} push notifications need SCHED_PUBLIC_URL (an https address this server is reached at); connections are polled instead`;
  }
  const url = new URL(publicUrl);
  if (capabilities.pushNeedsHttps && url.protocol !== 'https:' && !isLoopback(url.hostname)) {
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
  if (!CALENDAR_REGISTRY[provider].capabilities.push) {
    return {
      status: 'unavailable',
      reason: `${PROVIDER_DISPLAY_NAMES[provider]} has no push notifications; it is polled at frequency_minutes`,
    };
  }
  if (!realtime) return { status: 'off', reason: null };
  const reason = pushUnavailableReason(provider, publicUrl);
  return reason ? { status: 'unavailable', reason } : { status: 'on', reason: null };
}
