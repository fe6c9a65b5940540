import type { OAuthProviderSettings } from '../../src/calendar/providers/connectors.js';
import type { GoogleEmulator } from './google/emulator.js';
import type { GraphEmulator } from './graph/graph-emulator.js';

/** What a client needs of a Google emulator, whichever process it runs in. */
export type GoogleEndpoints = Pick<
  GoogleEmulator,
  'url' | 'apiUrl' | 'authUrl' | 'tokenUrl' | 'revokeUrl' | 'clientId' | 'clientSecret'
>;
/** What a client needs of a Graph emulator, whichever process it runs in. */
export type GraphEndpoints = Pick<
  GraphEmulator,
  'url' | 'apiUrl' | 'authUrl' | 'tokenUrl' | 'clientId' | 'clientSecret'
>;

/** Where a Sched server finds the Google emulator and its registered client. */
export function googleSettings(google: GoogleEndpoints): OAuthProviderSettings {
  return {
    apiUrl: google.apiUrl,
    authUrl: google.authUrl,
    tokenUrl: google.tokenUrl,
    revokeUrl: google.revokeUrl,
    clientId: google.clientId,
    clientSecret: google.clientSecret,
  };
}

/** Where a Sched server finds the Graph emulator and its registered client (Microsoft has no revocation). */
export function graphSettings(graph: GraphEndpoints): OAuthProviderSettings {
  return {
    apiUrl: graph.apiUrl,
    authUrl: graph.authUrl,
    tokenUrl: graph.tokenUrl,
    revokeUrl: undefined,
    clientId: graph.clientId,
    clientSecret: graph.clientSecret ?? undefined,
  };
}

/** Provider settings as the environment variables `loadConfig` reads (`<prefix>_API_URL`, ...). */
export function providerEnvironment(prefix: string, settings: OAuthProviderSettings): Record<string, string> {
  return {
    [`${prefix}_API_URL`]: settings.apiUrl,
    [`${prefix}_AUTH_URL`]: settings.authUrl,
    [`${prefix}_TOKEN_URL`]: settings.tokenUrl,
    ...(settings.revokeUrl ? { [`${prefix}_REVOKE_URL`]: settings.revokeUrl } : {}),
    ...(settings.clientId ? { [`${prefix}_CLIENT_ID`]: settings.clientId } : {}),
    ...(settings.clientSecret ? { [`${prefix}_CLIENT_SECRET`]: settings.clientSecret } : {}),
  };
}

/** The SCHED_GOOGLE_* settings that point a Sched server at a Google emulator. */
export function googleEnvironment(google: GoogleEndpoints): Record<string, string> {
  return providerEnvironment('SCHED_GOOGLE', googleSettings(google));
}

/** The SCHED_OUTLOOK_* settings that point a Sched server at a Graph emulator. */
export function graphEnvironment(graph: GraphEndpoints): Record<string, string> {
  return providerEnvironment('SCHED_OUTLOOK', graphSettings(graph));
}
