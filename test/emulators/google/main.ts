import { writeFileSync } from 'node:fs';
import { startGoogleEmulator } from './emulator.js';

/**
 * Standalone: `npx tsx test/emulators/google/main.ts [port]` (or GOOGLE_EMULATOR_PORT). Prints the
 * environment that points Sched at it. GOOGLE_EMULATOR_TLS=1 serves https; its certificate is written
 * to GOOGLE_EMULATOR_CA_FILE (default ./google-emulator-ca.pem) for the client to trust.
 */
const port = Number(process.argv[2] ?? process.env.GOOGLE_EMULATOR_PORT ?? 4010);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  process.stderr.write(`not a port: ${String(process.argv[2] ?? process.env.GOOGLE_EMULATOR_PORT)}\n`);
  process.exit(2);
}
const tls = process.env.GOOGLE_EMULATOR_TLS === '1';
const emulator = await startGoogleEmulator({
  port,
  tls,
  ...(process.env.GOOGLE_EMULATOR_CLIENT_ID ? { clientId: process.env.GOOGLE_EMULATOR_CLIENT_ID } : {}),
  ...(process.env.GOOGLE_EMULATOR_CLIENT_SECRET
    ? { clientSecret: process.env.GOOGLE_EMULATOR_CLIENT_SECRET }
    : {}),
});
const caFile = process.env.GOOGLE_EMULATOR_CA_FILE ?? 'google-emulator-ca.pem';
if (emulator.caCertificate !== null) writeFileSync(caFile, emulator.caCertificate);
process.stdout.write(
  [
    `Google Calendar emulator on ${emulator.url}`,
    ...(emulator.caCertificate === null ? [] : [`NODE_EXTRA_CA_CERTS=${caFile}`]),
    `SCHED_GOOGLE_API_URL=${emulator.apiUrl}`,
    `SCHED_GOOGLE_AUTH_URL=${emulator.authUrl}`,
    `SCHED_GOOGLE_TOKEN_URL=${emulator.tokenUrl}`,
    `SCHED_GOOGLE_REVOKE_URL=${emulator.revokeUrl}`,
    `SCHED_GOOGLE_CLIENT_ID=${emulator.clientId}`,
    `SCHED_GOOGLE_CLIENT_SECRET=${emulator.clientSecret}`,
    `control endpoints: ${emulator.url}/__control/... (see test/emulators/google/README.md)`,
    '',
  ].join('\n'),
);
const shutdown = () => {
  void emulator.stop().then(() => process.exit(0));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
