import type { GoogleEmulator } from './google/emulator.js';
import type { GraphEmulator } from './graph/graph-emulator.js';

/** The SCHED_GOOGLE_* settings that point a Sched server at a Google emulator. */
export function googleEnvironment(google: GoogleEmulator): Record<string, string> {
  return {
    SCHED_GOOGLE_API_URL: google.apiUrl,
    SCHED_GOOGLE_AUTH_URL: google.authUrl,
    SCHED_GOOGLE_TOKEN_URL: google.tokenUrl,
    SCHED_GOOGLE_REVOKE_URL: google.revokeUrl,
    SCHED_GOOGLE_CLIENT_ID: google.clientId,
    SCHED_GOOGLE_CLIENT_SECRET: google.clientSecret,
  };
}

/** The SCHED_OUTLOOK_* settings that point a Sched server at a Graph emulator. */
export function graphEnvironment(graph: GraphEmulator): Record<string, string> {
  return {
    SCHED_OUTLOOK_API_URL: graph.apiUrl,
    SCHED_OUTLOOK_AUTH_URL: graph.authUrl,
    SCHED_OUTLOOK_TOKEN_URL: graph.tokenUrl,
    SCHED_OUTLOOK_CLIENT_ID: graph.clientId,
    SCHED_OUTLOOK_CLIENT_SECRET: graph.clientSecret ?? '',
  };
}
