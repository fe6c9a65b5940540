import { createHash } from 'node:crypto';
import type { ProviderEndpoints } from '../../config.js';
import type { GuardedHttp } from '../../integrations/index.js';
import type { Connector, Connectors, PreparedConnection } from '../store/connections.js';
import { validationError, validationErrors, type FieldError } from '../../services/errors.js';
import { discoverCalendars, type DiscoveredCalendar } from './caldav/caldav-discovery.js';
import { CalDavProvider } from './caldav/caldav-provider.js';
import { IcsFeedProvider } from './ics/ics-feed-provider.js';
import type { CalendarParser } from '../parsing/parser.js';
import { GoogleCalendarProvider } from './google/google-provider.js';
import { OutlookCalendarProvider } from './outlook/outlook-provider.js';
import { OAuthClient, type OAuthEndpoints } from '../../integrations/index.js';
import type { AccessTokenSource, CalendarProvider } from '../port/provider.js';
import type { OAuthCredentials } from '../store/tokens.js';

function requireStrings<K extends string>(
  input: Record<string, unknown>,
  fields: readonly K[],
): Record<K, string> {
  const errors: FieldError[] = [];
  const out = {} as Record<K, string>;
  for (const field of fields) {
    const value = input[field];
    if (typeof value !== 'string' || value.length === 0) errors.push({ field, message: 'is required' });
    else out[field] = value;
  }
  if (errors.length > 0) throw validationErrors(errors);
  return out;
}

/** Picks the calendar the user named, or else the first one that holds events. */
function chooseCalendar(calendars: readonly DiscoveredCalendar[], wanted: unknown): DiscoveredCalendar {
  if (typeof wanted === 'string' && wanted.length > 0) {
    const byUrl = (url: string) => url.replace(/\/+$/, '');
    const match = calendars.find(
      (calendar) =>
        byUrl(calendar.url) === byUrl(wanted) ||
        new URL(calendar.url).pathname.replace(/\/+$/, '') === byUrl(wanted) ||
        calendar.displayName === wanted,
    );
    if (!match) {
      const names = calendars.map((calendar) => calendar.displayName ?? calendar.url).join(', ');
      throw validationError('calendar_id', `no calendar "${wanted}" here; found: ${names || 'none'}`);
    }
    return match;
  }
  const calendar = calendars.find((candidate) => candidate.supportsEvents) ?? calendars[0];
  if (!calendar) throw validationError('url', 'no calendar was found at this address');
  return calendar;
}

export type ConnectorOptions = {
  /** Per request to a provider; GuardedHttp's default (15 s) when absent. */
  timeoutMs?: number;
  /** Reads feeds off the event loop; the calling thread's inline parser when absent. */
  parser?: CalendarParser;
};

/**
 * `https://user:pass@host/` is taken apart at connect: the user name and password go to the sealed
 * credentials (where the fields are absent), and only the URL without them is used and stored, so they
 * never reach `calendar_id`, `settings`, the audit log or an error message.
 */
function caldavLogin(input: Record<string, unknown>): { url: string; username: string; password: string } {
  const { url: given } = requireStrings(input, ['url'] as const);
  let parsed: URL;
  try {
    parsed = new URL(given);
  } catch {
    throw validationError('url', 'must be an absolute http(s) URL');
  }
  if (!parsed.username && !parsed.password) {
    return { url: given, ...requireStrings(input, ['username', 'password'] as const) };
  }
  const fromUrl = {
    username: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
  };
  for (const field of ['username', 'password'] as const) {
    const value = input[field];
    if (
      typeof value === 'string' &&
      value.length > 0 &&
      fromUrl[field].length > 0 &&
      value !== fromUrl[field]
    ) {
      throw validationError(
        'url',
        `carries a ${field === 'username' ? 'user name' : 'password'} that differs from ${field}; give it once`,
      );
    }
  }
  parsed.username = '';
  parsed.password = '';
  const merged = {
    username: typeof input.username === 'string' && input.username ? input.username : fromUrl.username,
    password: typeof input.password === 'string' && input.password ? input.password : fromUrl.password,
  };
  return { url: parsed.toString(), ...requireStrings(merged, ['username', 'password'] as const) };
}

export function caldavConnector(http: GuardedHttp, options: ConnectorOptions = {}): Connector {
  return {
    readOnly: false,
    async prepare(input): Promise<PreparedConnection> {
      const { url, username, password } = caldavLogin(input);
      const { calendars } = await discoverCalendars(http, { url, username, password }, options);
      const calendar = chooseCalendar(calendars, input.calendar_id);
      return {
        calendarId: calendar.url,
        settings: { server_url: url, collection_url: calendar.url, display_name: calendar.displayName },
        credentials: { username, password },
      };
    },
    open(settings, credentials) {
      return new CalDavProvider({
        http,
        collectionUrl: String(settings.collection_url),
        username: String(credentials.username),
        password: String(credentials.password),
        ...options,
      });
    },
  };
}

/**
 * An ICS feed's URL often carries its secret (private calendar addresses), so it is stored sealed
 * with the credentials and the calendar is named by a digest of it.
 */
export function icsConnector(http: GuardedHttp, options: ConnectorOptions = {}): Connector {
  return {
    readOnly: true,
    async prepare(input): Promise<PreparedConnection> {
      const { url } = requireStrings(input, ['url'] as const);
      // Read once now, so a wrong address is refused at connect rather than failing every sync later.
      await new IcsFeedProvider({ http, url, ...options }).listChanges(null, new Map());
      const digest = createHash('sha256').update(url).digest('hex').slice(0, 24);
      const host = new URL(url.replace(/^webcal:/i, 'https:')).host;
      return { calendarId: `ics_${digest}`, settings: { display_name: host }, credentials: { url } };
    },
    open(_settings, credentials) {
      return new IcsFeedProvider({ http, url: String(credentials.url), ...options });
    },
  };
}

export type OAuthConnectorOptions = {
  endpoints: OAuthEndpoints;
  /** Opens the provider's adapter for one connection. */
  open(calendarId: string, tokens: AccessTokenSource): CalendarProvider;
};

/**
 * Google and Outlook: OAuth 2.0. With `oauth_token` (and `refresh_token`, `expires_at`) the tokens are
 * taken as given; without, the connection goes through the authorization flow (services/calendar-oauth.ts).
 */
export function oauthConnector(http: GuardedHttp, options: OAuthConnectorOptions): Connector {
  const oauth = new OAuthClient(options.endpoints, http);
  return {
    readOnly: false,
    oauth,
    prepare(input): Promise<PreparedConnection> {
      const { oauth_token } = requireStrings(input, ['oauth_token'] as const);
      const expiresAt = typeof input.expires_at === 'string' ? Date.parse(input.expires_at) : NaN;
      const credentials: OAuthCredentials = {
        access_token: oauth_token,
        refresh_token: typeof input.refresh_token === 'string' ? input.refresh_token : null,
        expires_at: Number.isFinite(expiresAt) ? expiresAt : null,
      };
      const calendarId = typeof input.calendar_id === 'string' ? input.calendar_id : 'primary';
      return Promise.resolve({ calendarId, settings: {}, credentials });
    },
    open(settings, credentials, context) {
      const calendarId = typeof settings.calendar_id === 'string' ? settings.calendar_id : undefined;
      const tokens = context?.tokens ?? {
        get: () => Promise.resolve(String((credentials as unknown as OAuthCredentials).access_token)),
      };
      return options.open(calendarId ?? 'primary', tokens);
    },
  };
}

/** Where the OAuth providers are reached (config.ts: SCHED_GOOGLE_*, SCHED_OUTLOOK_*). */
export type OAuthProviderSettings = ProviderEndpoints;

/** Least privilege: events only, not calendar settings or sharing. */
export const GOOGLE_SCOPES = ['https://www.googleapis.com/auth/calendar.events'];
export const OUTLOOK_SCOPES = ['offline_access', 'Calendars.ReadWrite'];

export function googleConnector(
  http: GuardedHttp,
  settings: OAuthProviderSettings,
  options: ConnectorOptions = {},
) {
  return oauthConnector(http, {
    endpoints: {
      ...settings,
      scopes: GOOGLE_SCOPES,
      // A refresh token comes only with offline access, and only on a fresh consent.
      authParams: { access_type: 'offline', prompt: 'consent', include_granted_scopes: 'true' },
    },
    open: (calendarId, tokens) =>
      new GoogleCalendarProvider({ http, apiUrl: settings.apiUrl, calendarId, tokens, ...options }),
  });
}

export function outlookConnector(
  http: GuardedHttp,
  settings: OAuthProviderSettings,
  options: ConnectorOptions = {},
) {
  return oauthConnector(http, {
    endpoints: {
      ...settings,
      revokeUrl: undefined,
      scopes: OUTLOOK_SCOPES,
      authParams: { response_mode: 'query' },
    },
    open: (calendarId, tokens) =>
      new OutlookCalendarProvider({ http, apiUrl: settings.apiUrl, calendarId, tokens, ...options }),
  });
}

export function createConnectors(
  http: GuardedHttp,
  options: ConnectorOptions & { google?: OAuthProviderSettings; outlook?: OAuthProviderSettings } = {},
): Connectors {
  const { google, outlook, ...common } = options;
  return {
    caldav: caldavConnector(http, common),
    ics: icsConnector(http, common),
    ...(google ? { google: googleConnector(http, google, common) } : {}),
    ...(outlook ? { outlook: outlookConnector(http, outlook, common) } : {}),
  };
}
