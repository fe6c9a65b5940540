/**
 * The Google and Graph emulators in a process of their own, for the first-sync benchmark: serving
 * their pages then takes no time from the client's main thread, as with the real services. Started by
 * bench/emulator-process.ts over an IPC channel; it stops when asked (SIGTERM, SIGINT) and when its
 * parent goes away (the channel closes).
 */
import { performance } from 'node:perf_hooks';
import { startGoogleEmulator } from '../test/emulators/google/emulator.js';
import { startGraphEmulator } from '../test/emulators/graph/graph-emulator.js';
import type { EmulatorsReady, EventsLoaded, LoadEvents } from './emulator-protocol.js';
import { eventSpecs, loadGoogle, loadGraph } from './provider-events.js';

const google = await startGoogleEmulator();
const graph = await startGraphEmulator();

let stopping: Promise<void> | undefined;
const stop = () =>
  (stopping ??= Promise.allSettled([google.stop(), graph.stop()]).then(() => process.exit(0)));
process.on('disconnect', () => void stop());
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

/** Both emulators loaded in this process (no HTTP round trip per event), through their control surface. */
async function load(request: LoadEvents): Promise<EventsLoaded> {
  const specs = eventSpecs(request.today);
  const control = google.localControl;
  const calendar = await control.createCalendar({ summary: 'bench' });
  const googleStarted = performance.now();
  await loadGoogle(control, calendar.id, specs);
  const googleMs = performance.now() - googleStarted;
  // Graph v1.0 tracks changes (calendarView/delta) on the primary calendar only.
  const graphCalendarId = 'primary';
  const graphStarted = performance.now();
  loadGraph(graph.control, graphCalendarId, specs);
  const graphMs = performance.now() - graphStarted;
  return {
    kind: 'loaded',
    id: request.id,
    ok: true,
    googleCalendarId: calendar.id,
    graphCalendarId,
    googleToken: (await control.mintTokens()).access_token,
    graphToken: graph.control.mintToken().accessToken,
    loadMs: { google: googleMs, outlook: graphMs },
  };
}

process.on('message', (message: LoadEvents) => {
  if (message?.kind !== 'load') return;
  void load(message).then(
    (reply) => process.send?.(reply),
    (error: unknown) =>
      process.send?.({
        kind: 'loaded',
        id: message.id,
        ok: false,
        error: String(error),
      } satisfies EventsLoaded),
  );
});

const endpoint = <T extends object, K extends keyof T>(from: T, keys: readonly K[]) =>
  Object.fromEntries(keys.map((key) => [key, from[key]])) as Pick<T, K>;
process.send?.({
  kind: 'ready',
  google: endpoint(google, ['url', 'apiUrl', 'authUrl', 'tokenUrl', 'revokeUrl', 'clientId', 'clientSecret']),
  graph: endpoint(graph, ['url', 'apiUrl', 'authUrl', 'tokenUrl', 'clientId', 'clientSecret']),
} satisfies EmulatorsReady);
