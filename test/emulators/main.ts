import { writeFileSync } from 'node:fs';
import { loadConfig } from '../../src/config.js';
import { googleEnvironment, graphEnvironment } from './environment.js';
import { startGoogleEmulator } from './google/emulator.js';
import { startGraphEmulator } from './graph/graph-emulator.js';

/**
 * `npm run emulators`: both provider emulators for a local demo, and the environment that points a
 * Sched server at them (pipe it into a file and `set -a; . ./that-file` before `npm start`).
 *
 * Ports: Google on 127.0.0.1:4010 and Graph on 127.0.0.1:4020, or GOOGLE_EMULATOR_PORT and
 * GRAPH_EMULATOR_PORT. SCHED_PUBLIC_URL is derived from the PORT (and HOST) the Sched server will
 * read, so push notifications and the OAuth callback reach that server; a SCHED_PUBLIC_URL already
 * set is kept. EMULATORS_TLS=1 serves both over https with a self-signed certificate, written to
 * EMULATORS_CA_FILE (default ./emulators-ca.pem) and named in NODE_EXTRA_CA_CERTS for the server.
 */
function port(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65_535) {
    process.stderr.write(`${name}: not a port: ${String(raw)}\n`);
    process.exit(2);
  }
  return value;
}

/** Where the Sched server that reads this same environment will listen. */
function schedPublicUrl(): string {
  if (process.env.SCHED_PUBLIC_URL) return process.env.SCHED_PUBLIC_URL.replace(/\/+$/, '');
  const config = loadConfig({ PORT: process.env.PORT, HOST: process.env.HOST });
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`;
}

const tls = process.env.EMULATORS_TLS === '1';
const publicUrl = schedPublicUrl();
const google = await startGoogleEmulator({ port: port('GOOGLE_EMULATOR_PORT', 4010), tls });
const graph = await startGraphEmulator({ port: port('GRAPH_EMULATOR_PORT', 4020), tls });
const caFile = process.env.EMULATORS_CA_FILE ?? 'emulators-ca.pem';
if (google.caCertificate) writeFileSync(caFile, google.caCertificate);
process.stdout.write(
  [
    `# Google Calendar emulator on ${google.url}, Microsoft Graph emulator on ${graph.url}`,
    `# control endpoints: <emulator>/__control/... (test/emulators/google/README.md, test/emulators/graph/README.md)`,
    `# the Sched server these settings are for listens at ${publicUrl}`,
    'SCHED_OUTBOUND_ALLOW=127.0.0.1/32',
    `SCHED_PUBLIC_URL=${publicUrl}`,
    ...(google.caCertificate ? [`NODE_EXTRA_CA_CERTS=${caFile}`] : []),
    ...Object.entries({ ...googleEnvironment(google), ...graphEnvironment(graph) }).map(
      ([name, value]) => `${name}=${value}`,
    ),
    '',
  ].join('\n'),
);
const shutdown = () => {
  void Promise.all([google.stop(), graph.stop()]).then(() => process.exit(0));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
