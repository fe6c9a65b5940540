import { writeFileSync } from 'node:fs';
import { startGraphEmulator } from './graph-emulator.js';

/**
 * Standalone: `npx tsx test/emulators/graph/main.ts [--port 4010] [--tls [--cert-file cert.pem]]`.
 * Prints the environment the server needs to talk to it, then runs until interrupted. With `--tls`
 * it serves https with a self-signed certificate, written (PEM) to `--cert-file` when given.
 */
const flag = (name: string) => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
};
const port = Number(flag('--port') ?? process.env.GRAPH_EMULATOR_PORT ?? 0);
const tls = process.argv.includes('--tls');
const certFile = flag('--cert-file');

const emulator = await startGraphEmulator({ port: Number.isInteger(port) ? port : 0, tls });
if (emulator.caCertificate && certFile) writeFileSync(certFile, emulator.caCertificate);
const lines = [
  `# Microsoft Graph emulator on ${emulator.url} (control: ${emulator.url}/__control/...)`,
  `SCHED_OUTLOOK_API_URL=${emulator.apiUrl}`,
  `SCHED_OUTLOOK_AUTH_URL=${emulator.authUrl}`,
  `SCHED_OUTLOOK_TOKEN_URL=${emulator.tokenUrl}`,
  `SCHED_OUTLOOK_CLIENT_ID=${emulator.clientId}`,
  `SCHED_OUTLOOK_CLIENT_SECRET=${emulator.clientSecret ?? ''}`,
  ...(emulator.caCertificate && certFile ? [`# certificate (PEM) to trust: ${certFile}`] : []),
];
process.stdout.write(`${lines.join('\n')}\n`);

const shutdown = () => {
  void emulator.stop().then(() => process.exit(0));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
