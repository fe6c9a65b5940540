import { startGraphEmulator } from './graph-emulator.js';

/**
 * Standalone: `npx tsx test/emulators/graph/main.ts [--port 4010]`. Prints the environment the
 * server needs to talk to it, then runs until interrupted.
 */
const portFlag = process.argv.indexOf('--port');
const port = Number(portFlag >= 0 ? process.argv[portFlag + 1] : (process.env.GRAPH_EMULATOR_PORT ?? 0));

const emulator = await startGraphEmulator({ port: Number.isInteger(port) ? port : 0 });
const lines = [
  `# Microsoft Graph emulator on ${emulator.url} (control: ${emulator.url}/__control/...)`,
  `SCHED_OUTLOOK_API_URL=${emulator.apiUrl}`,
  `SCHED_OUTLOOK_AUTH_URL=${emulator.authUrl}`,
  `SCHED_OUTLOOK_TOKEN_URL=${emulator.tokenUrl}`,
  `SCHED_OUTLOOK_CLIENT_ID=${emulator.clientId}`,
  `SCHED_OUTLOOK_CLIENT_SECRET=${emulator.clientSecret ?? ''}`,
];
process.stdout.write(`${lines.join('\n')}\n`);

const shutdown = () => {
  void emulator.stop().then(() => process.exit(0));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
