import { startGoogleEmulator } from './google/emulator.js';
import { startGraphEmulator } from './graph/graph-emulator.js';

/**
 * `npm run emulators`: both provider emulators for a local demo, on 127.0.0.1:4010 (Google) and
 * 127.0.0.1:4020 (Graph), or GOOGLE_EMULATOR_PORT / GRAPH_EMULATOR_PORT. Prints the environment that
 * points a Sched server at them; export it (with SCHED_OUTBOUND_ALLOW=127.0.0.1/32, since the
 * emulators are on loopback) before `npm start`.
 */
const google = await startGoogleEmulator({ port: Number(process.env.GOOGLE_EMULATOR_PORT ?? 4010) });
const graph = await startGraphEmulator({ port: Number(process.env.GRAPH_EMULATOR_PORT ?? 4020) });
process.stdout.write(
  [
    `# Google Calendar emulator on ${google.url}, Microsoft Graph emulator on ${graph.url}`,
    `# control endpoints: <emulator>/__control/... (test/emulators/google/README.md, test/emulators/graph/README.md)`,
    'SCHED_OUTBOUND_ALLOW=127.0.0.1/32',
    'SCHED_PUBLIC_URL=http://127.0.0.1:3000',
    `SCHED_GOOGLE_API_URL=${google.apiUrl}`,
    `SCHED_GOOGLE_AUTH_URL=${google.authUrl}`,
    `SCHED_GOOGLE_TOKEN_URL=${google.tokenUrl}`,
    `SCHED_GOOGLE_REVOKE_URL=${google.revokeUrl}`,
    `SCHED_GOOGLE_CLIENT_ID=${google.clientId}`,
    `SCHED_GOOGLE_CLIENT_SECRET=${google.clientSecret}`,
    `SCHED_OUTLOOK_API_URL=${graph.apiUrl}`,
    `SCHED_OUTLOOK_AUTH_URL=${graph.authUrl}`,
    `SCHED_OUTLOOK_TOKEN_URL=${graph.tokenUrl}`,
    `SCHED_OUTLOOK_CLIENT_ID=${graph.clientId}`,
    `SCHED_OUTLOOK_CLIENT_SECRET=${graph.clientSecret ?? ''}`,
    '',
  ].join('\n'),
);
const shutdown = () => {
  void Promise.all([google.stop(), graph.stop()]).then(() => process.exit(0));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
