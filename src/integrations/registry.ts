import type { CalendarProviderName } from '../storage/database.js';

/** What an integration can do; the engine and the API read this rather than naming providers. */
export type Capabilities = {
  /** Connected through OAuth 2.0 consent (authorization code with PKCE, refresh, revocation). */
  oauth: boolean;
  /** Can call us back when something changes (a watch channel, a subscription). */
  push: boolean;
  /** Delivers push only to https addresses (loopback excepted, for local development). */
  pushNeedsHttps: boolean;
  /** Sched can only read from it. */
  readOnly: boolean;
};

export type RegistryEntry = {
  name: CalendarProviderName;
  /** The name the contract uses in messages. */
  displayName: string;
  /** The prefix of its settings in the environment (SCHED_GOOGLE_CLIENT_ID, ...); null when it has none. */
  envPrefix: string | null;
  capabilities: Capabilities;
};

/**
 * One entry per provider. Adding a provider means its folder under calendar/providers/, one entry
 * here, and one connector in calendar/providers/connectors.ts.
 */
export const CALENDAR_REGISTRY: Readonly<Record<CalendarProviderName, RegistryEntry>> = {
  google: {
    name: 'google',
    displayName: 'Google Calendar',
    envPrefix: 'SCHED_GOOGLE',
    capabilities: { oauth: true, push: true, pushNeedsHttps: true, readOnly: false },
  },
  outlook: {
    name: 'outlook',
    displayName: 'Outlook Calendar',
    envPrefix: 'SCHED_OUTLOOK',
    capabilities: { oauth: true, push: true, pushNeedsHttps: true, readOnly: false },
  },
  caldav: {
    name: 'caldav',
    displayName: 'CalDAV Calendar',
    envPrefix: null,
    capabilities: { oauth: false, push: false, pushNeedsHttps: false, readOnly: false },
  },
  ics: {
    name: 'ics',
    displayName: 'ICS Feed',
    envPrefix: null,
    capabilities: { oauth: false, push: false, pushNeedsHttps: false, readOnly: true },
  },
};

export const PROVIDER_NAMES = Object.keys(CALENDAR_REGISTRY) as CalendarProviderName[];

/** The names the contract uses in messages. */
export const PROVIDER_DISPLAY_NAMES: Readonly<Record<CalendarProviderName, string>> = Object.fromEntries(
  PROVIDER_NAMES.map((name) => [name, CALENDAR_REGISTRY[name].displayName]),
) as Record<CalendarProviderName, string>;
