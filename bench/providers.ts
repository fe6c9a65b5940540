import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { Agent, request } from 'undici';
import { MAX_PAGE_SIZE } from '../src/calendar/providers/google/google-events-api.js';
import { BASE_PREFER } from '../src/calendar/providers/outlook/outlook-client.js';
import { type Connector, type Connectors, connectCalendar } from '../src/calendar/store/connections.js';
import { expansionWindow, fromRemote } from '../src/calendar/parsing/expand.js';
import { syncConnection, type SyncStats } from '../src/calendar/engine/sync.js';
import type { Actor } from '../src/services/context.js';
import { startGoogleEmulator } from '../test/emulators/google/emulator.js';
import { startGraphEmulator } from '../test/emulators/graph/graph-emulator.js';
import {
  type GoogleEndpoints,
  googleEnvironment,
  type GraphEndpoints,
  graphEnvironment,
} from '../test/emulators/environment.js';
import { freePort } from '../test/support/test-app.js';
import { startEmulatorProcess } from './emulator-process.js';
import {
  expectedItems,
  eventSpecs,
  MS_PER_DAY,
  MS_PER_MINUTE,
  type OAuthProvider,
  SERIES,
  SINGLES,
} from './provider-events.js';
import type { Defer } from './calendars.js';
import type { BenchContext, BenchOutcome } from './context.js';
import {
  describePhases,
  syncPhases,
  timedProvider,
  timeStoring,
  type SyncPhases,
  type TimedListing,
} from './sync-breakdown.js';
import { benchDependencies, createResources, officeHours, roundTheClock } from './fixtures.js';
import { type BenchRow, dayAfterTomorrowUtc, log, median, seededRandom, timed } from './support.js';

/** OutlookCalendarProvider's delta page size and window; the connector keeps both defaults. */
const GRAPH_PAGE_SIZE = 100;
const GRAPH_WINDOW = { pastDays: 31, futureDays: 400 };
/** The performance issue's aim for a first sync: at least two thirds of the bare page reads' rate. */
const SYNC_AIM = 0.67;
/** Changes made per provider in the push benchmark. */
const PUSH_CHANGES = 30;
const POLL_EVERY_MS = 10;
/** The shortest polling interval pg-boss accepts; it bounds how long a queued sync waits for a worker. */
const POLLING_INTERVAL_SECONDS = 0.5;

/**
 * events.list as a minimal client pages through it: the adapter's page size, following nextPageToken
 * to the end; every body read and JSON-parsed, nothing kept but the count.
 */
async function bareGoogle(agent: Agent, apiUrl: string, calendarId: string, token: string): Promise<number> {
  const base = `${apiUrl}/calendars/${encodeURIComponent(calendarId)}/events`;
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
  let items = 0;
  let pageToken: string | undefined;
  for (let page = 0; page < 1000; page++) {
    const url = new URL(base);
    url.searchParams.set('maxResults', String(MAX_PAGE_SIZE));
    if (pageToken !== undefined) url.searchParams.set('pageToken', pageToken);
    const answer = await request(url, { headers, dispatcher: agent });
    const text = await answer.body.text();
    if (answer.statusCode !== 200) throw new Error(`events.list answered ${answer.statusCode}: ${text}`);
    const body = JSON.parse(text) as { items?: unknown[]; nextPageToken?: string };
    items += body.items?.length ?? 0;
    if (!body.nextPageToken) return items;
    pageToken = body.nextPageToken;
  }
  throw new Error('events.list did not end within 1000 pages');
}

/**
 * A first calendarView/delta round of the primary calendar as the adapter makes it (same path, window,
 * Prefer headers and page size), following @odata.nextLink to the deltaLink; bodies read and
 * JSON-parsed, nothing kept.
 */
async function bareGraph(agent: Agent, apiUrl: string, token: string): Promise<number> {
  const now = Date.now();
  const window = (days: number) => encodeURIComponent(new Date(now + days * MS_PER_DAY).toISOString());
  let url =
    `${apiUrl}/me/calendarView/delta` +
    `?startDateTime=${window(-GRAPH_WINDOW.pastDays)}&endDateTime=${window(GRAPH_WINDOW.futureDays)}`;
  const headers = {
    authorization: `Bearer ${token}`,
    accept: 'application/json',
    prefer: `${BASE_PREFER}, odata.maxpagesize=${GRAPH_PAGE_SIZE}`,
  };
  let items = 0;
  for (let page = 0; page < 10_000; page++) {
    const answer = await request(url, { headers, dispatcher: agent });
    const text = await answer.body.text();
    if (answer.statusCode !== 200)
      throw new Error(`calendarView/delta answered ${answer.statusCode}: ${text}`);
    const body = JSON.parse(text) as {
      value?: unknown[];
      '@odata.nextLink'?: string;
      '@odata.deltaLink'?: string;
    };
    items += body.value?.length ?? 0;
    if (body['@odata.nextLink']) url = body['@odata.nextLink'];
    else if (body['@odata.deltaLink']) return items;
    else throw new Error('a calendarView/delta page carried neither a nextLink nor a deltaLink');
  }
  throw new Error('calendarView/delta did not end within 10,000 pages');
}

/** What `sched serve` reads to reach the emulators instead of Google and Microsoft. */
function emulatorEnvironment(google: GoogleEndpoints, graph: GraphEndpoints): Record<string, string> {
  return {
    SCHED_CALENDAR_PROVIDERS: 'google,outlook,caldav,ics',
    ...googleEnvironment(google),
    ...graphEnvironment(graph),
  };
}

/** Runs `stop` once, whether the bench ends normally or the run's cleanup gets there first. */
function once(defer: Defer, what: string, stop: () => Promise<void> | void): () => Promise<void> {
  let done: Promise<void> | undefined;
  const run = () => (done ??= Promise.resolve().then(stop));
  defer(what, run);
  return run;
}

async function startEmulators(defer: Defer) {
  const google = await startGoogleEmulator();
  const stopGoogle = once(defer, 'stop the Google emulator', () => google.stop());
  const graph = await startGraphEmulator();
  const stopGraph = once(defer, 'stop the Graph emulator', () => graph.stop());
  return {
    google,
    graph,
    env: emulatorEnvironment(google, graph),
    stop: async () => {
      await stopGraph();
      await stopGoogle();
    },
  };
}

type ListCall = TimedListing & { provider: OAuthProvider };

/** The connectors, with every listing a sync reads timed (bench/sync-breakdown.ts). */
function timedConnectors(connectors: Connectors, calls: ListCall[]): Connectors {
  const wrap = (connector: Connector, name: OAuthProvider): Connector => ({
    readOnly: connector.readOnly,
    ...(connector.oauth ? { oauth: connector.oauth } : {}),
    prepare: (input) => connector.prepare(input),
    open: (settings, credentials, context) =>
      timedProvider(connector.open(settings, credentials, context), (listing) =>
        calls.push(Object.assign(listing, { provider: name })),
      ),
  });
  return {
    ...connectors,
    ...(connectors.google ? { google: wrap(connectors.google, 'google') } : {}),
    ...(connectors.outlook ? { outlook: wrap(connectors.outlook, 'outlook') } : {}),
  };
}

const NAMES: Record<OAuthProvider, string> = { google: 'Google', outlook: 'Outlook (Graph)' };
const seconds = (ms: number) => (ms / 1000).toFixed(2);

/**
 * The first sync of 10,000 events from each emulator (`syncConnection` on a new connection: fetch,
 * convert, parse, expand, store) against the bare page reads of the same data from the same emulator.
 */
export async function benchProviderSync(context: BenchContext, defer: Defer): Promise<BenchOutcome> {
  const problems: string[] = [];
  const details: string[] = [];
  const rows: BenchRow[] = [];
  const { sched, database } = context;
  const benchStarted = performance.now();
  // Every sync expands at the same instant, so each stores the same occurrences.
  const now = Date.now();
  const today = Math.floor(now / MS_PER_DAY) * MS_PER_DAY;
  const specs = eventSpecs(today);
  const expected = expectedItems(specs);

  // In a process of their own, so that serving pages takes nothing from this main thread: the
  // measured sides are the client's work (and the wait for the emulator), as against the real services.
  const emulators = await startEmulatorProcess();
  const stopEmulators = once(defer, 'stop the emulator process', () => emulators.stop());
  const { google, graph } = emulators;
  const loaded = await emulators.load(today);
  const { loadMs } = loaded;
  log(
    `provider-sync: ${specs.length} events loaded into the Google emulator in ${seconds(loadMs.google)} s, ` +
      `into the Graph emulator in ${seconds(loadMs.outlook)} s (in their process)`,
  );

  const calls: ListCall[] = [];
  // As `sched serve` builds them on the emulators (outbound HTTP to 127.0.0.1/32 only), listChanges timed.
  const sync = await benchDependencies(database, {
    clock: () => now,
    env: emulatorEnvironment(google, graph),
    instrumentConnectors: (connectors) => timedConnectors(connectors, calls),
  });
  const closeSync = once(defer, 'close the provider-sync dependencies', () => sync.close());
  const deps = sync.calendar;
  const agent = new Agent({ keepAliveTimeout: 30_000 });
  const closeAgent = once(defer, 'close the bare HTTP agent', () => agent.destroy());
  const [resourceId] = await createResources(sched, 1, () => officeHours('Europe/Berlin'));
  const actor: Actor = { organizationId: sched.organizationId, label: 'bench', scopes: ['admin'] };

  const sides = [
    {
      provider: 'google' as const,
      calendarId: loaded.googleCalendarId,
      token: loaded.googleToken,
      objects: specs.length,
      bare: (token: string) => bareGoogle(agent, google.apiUrl, loaded.googleCalendarId, token),
    },
    {
      provider: 'outlook' as const,
      calendarId: loaded.graphCalendarId,
      token: loaded.graphToken,
      // Graph lists every occurrence as its own item, and the adapter stores each as its own object.
      objects: expected.outlook,
      bare: (token: string) => bareGraph(agent, graph.apiUrl, token),
    },
  ];

  for (const side of sides) {
    const name = NAMES[side.provider];
    const items = expected[side.provider];
    const firstRead = await side.bare(side.token);
    if (firstRead !== items) {
      throw new Error(`provider-sync: the ${name} emulator served ${firstRead} items, expected ${items}`);
    }
    let stored: { occurrences: number; recurring: number } | undefined;
    const phases: SyncPhases[] = [];
    const connect = async (): Promise<string> => {
      const connection = await connectCalendar(
        deps,
        actor,
        side.provider,
        {
          resource_id: resourceId!,
          calendar_id: side.calendarId,
          oauth_token: side.token,
          sync: { realtime: false, frequency_minutes: 0 },
        },
        { publicUrl: context.schedUrl },
      );
      return connection.connection_id;
    };
    const syncOnce = async (): Promise<number> => {
      const id = await connect();
      const before = calls.length;
      let stats: SyncStats | undefined;
      const started = performance.now();
      const ms = await timed(async () => {
        stats = await syncConnection(deps, id);
      });
      phases.push(syncPhases(started, ms, calls[before]));
      const counts = await sql<{ events: number; failed: number; recurring: number; occurrences: number }>`
        select (select count(*)::int from calendar_events where connection_id = ${id}) as events,
               (select count(*)::int from calendar_events where connection_id = ${id}
                  and parse_error is not null) as failed,
               (select count(*)::int from calendar_events where connection_id = ${id} and recurring) as recurring,
               (select count(*)::int from calendar_occurrences where connection_id = ${id}) as occurrences`.execute(
        database.db,
      );
      const row = counts.rows[0]!;
      if (stats?.created !== side.objects || row.events !== side.objects || row.failed > 0) {
        problems.push(
          `provider-sync: a first ${name} sync created ${stats?.created}, stored ${row.events} objects ` +
            `(${row.failed} unparsed), expected ${side.objects}`,
        );
      }
      if (stored && (stored.occurrences !== row.occurrences || stored.recurring !== row.recurring)) {
        problems.push(
          `provider-sync: ${name} syncs stored ${stored.recurring} then ${row.recurring} series, ` +
            `${stored.occurrences} then ${row.occurrences} occurrences`,
        );
      }
      stored = { occurrences: row.occurrences, recurring: row.recurring };
      await database.db.deleteFrom('calendar_connections').where('connection_id', '=', id).execute();
      await sql`vacuum analyze calendar_events, calendar_occurrences`.execute(database.db);
      return ms;
    };
    const bareOnce = async (): Promise<number> => {
      let read = 0;
      const ms = await timed(async () => {
        read = await side.bare(side.token);
      });
      if (read !== items)
        problems.push(`provider-sync: a bare ${name} read got ${read} items, expected ${items}`);
      return ms;
    };

    const times: Record<'sync' | 'bare', number[]> = { sync: [], bare: [] };
    for (const kind of ['sync', 'bare', 'bare', 'sync', 'sync', 'bare'] as const) {
      const ms = kind === 'sync' ? await syncOnce() : await bareOnce();
      times[kind].push(ms);
      log(`provider-sync: ${name} ${kind === 'sync' ? 'first sync' : 'bare read'} ${seconds(ms)} s`);
    }
    // Parsing and expanding alone, in-process and warm, on the objects as the adapter hands them over.
    const served = await deps.connectors[side.provider]!.open(
      { calendar_id: side.calendarId },
      { access_token: side.token, refresh_token: null, expires_at: null },
    ).listChanges(null, new Map());
    const window = expansionWindow(now);
    const expandTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      expandTimes.push(
        await timed(async () => {
          for (const event of served.changed) fromRemote(event, window, 'Europe/Berlin');
        }),
      );
    }
    // Storing alone, the same objects expanded beforehand, into a connection that holds nothing yet.
    const expanded = served.changed.map((event) => fromRemote(event, window, 'Europe/Berlin'));
    const storeTimes = await timeStoring(database.db, connect, expanded, now);
    const syncMs = median(times.sync);
    const bareMs = median(times.bare);
    const pages =
      side.provider === 'google'
        ? `${Math.ceil(items / MAX_PAGE_SIZE)} events.list pages of ${MAX_PAGE_SIZE}`
        : `${Math.ceil(items / GRAPH_PAGE_SIZE)} calendarView/delta pages of ${GRAPH_PAGE_SIZE}`;
    rows.push({
      name: `first ${name} sync, ${items} items from the emulator (events/s)`,
      ours: items / (syncMs / 1000),
      baseline: items / (bareMs / 1000),
      unit: 'events/s',
      aimKind: 'min',
      note:
        `${SINGLES} single events + ${SERIES} weekly series, ${items} items read, ${side.objects} objects ` +
        `and ${stored?.occurrences} occurrences stored; syncConnection on a new connection (PostgreSQL) ` +
        `${seconds(syncMs)} s vs the bare ${pages} ${seconds(bareMs)} s; medians of 3, ABBA`,
      aim: SYNC_AIM,
    });
    details.push(
      `provider-sync, ${name}: syncs ${times.sync.map(seconds).join(', ')} s, bare reads ` +
        `${times.bare.map(seconds).join(', ')} s; inside the syncs, ${describePhases(phases)}; alone, ` +
        `parsing and expanding the ${served.changed.length} objects takes ${seconds(median(expandTimes))} s ` +
        `warm (one thread) and storing them ${seconds(median(storeTimes))} s`,
    );
  }
  details.push(
    `provider-sync: setup: ${specs.length} events loaded through the Google control endpoints in ` +
      `${seconds(loadMs.google)} s and through the Graph control in ${seconds(loadMs.outlook)} s, both in the ` +
      `emulators' own process, which serves the syncs and the bare reads alike`,
  );
  await closeAgent();
  await closeSync();
  await stopEmulators();
  log(`provider-sync: done in ${((performance.now() - benchStarted) / 1000).toFixed(0)} s`);
  return { rows, problems, details };
}

/** The nearest-rank percentile. */
function percentile(values: readonly number[], share: number): number {
  if (values.length === 0) throw new Error('percentile of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(share * sorted.length) - 1)]!;
}

type PushSample = {
  latency: number;
  /** From the emulator call returning to the notification reaching the app. */
  notified: number;
  /** From the notification to the sync's listChanges starting (NOTIFY, scan, queue, worker poll). */
  queued: number;
  listing: number;
  /** From listChanges returning to the first availability answer without the slot. */
  stored: number;
};

/**
 * A change at each provider, made as a user would, until it shows in GET /availability: through the
 * provider's notification to /hooks/<provider>, the worker's queue and an incremental sync.
 */
export async function benchProviderPush(context: BenchContext, defer: Defer): Promise<BenchOutcome> {
  const problems: string[] = [];
  const details: string[] = [];
  const { sched, database } = context;
  const benchStarted = performance.now();
  const emulators = await startEmulators(defer);
  const { google, graph } = emulators;
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const calls: ListCall[] = [];
  // A server of its own, as `sched serve` builds it with SCHED_PUBLIC_URL set, so that the providers
  // can call its /hooks; the same timed connectors serve its app, its sync worker and the calls below.
  const push = await benchDependencies(database, {
    env: { ...emulators.env, SCHED_PUBLIC_URL: publicUrl },
    instrumentConnectors: (connectors) => timedConnectors(connectors, calls),
  });
  const closePush = once(defer, 'close the push dependencies', () => push.close());
  const deps = push.calendar;
  const app = await push.buildApp();
  const closeApp = once(defer, 'close the push app', () => app.close());
  const hooks: { provider: OAuthProvider; at: number }[] = [];
  app.server.on('request', (incoming: IncomingMessage) => {
    const url = incoming.url ?? '';
    if (url === '/hooks/google') hooks.push({ provider: 'google', at: performance.now() });
    if (url === '/hooks/outlook') hooks.push({ provider: 'outlook', at: performance.now() });
  });
  await app.listen({ host: '127.0.0.1', port });

  const [googleResource, outlookResource] = await createResources(sched, 2, () => roundTheClock('UTC'));
  const actor: Actor = { organizationId: sched.organizationId, label: 'bench', scopes: ['admin'] };
  const googleCalendar = await google.control.createCalendar({ summary: 'bench push' });
  const graphCalendar = graph.control.createCalendar('bench push');
  const sides = [
    {
      provider: 'google' as const,
      resourceId: googleResource!,
      calendarId: googleCalendar.id,
      token: (await google.control.mintTokens()).access_token,
      change: async (start: number, end: number) => {
        await google.control.insertEvent(googleCalendar.id, {
          summary: 'Booked elsewhere',
          start: { dateTime: new Date(start).toISOString() },
          end: { dateTime: new Date(end).toISOString() },
        });
      },
    },
    {
      provider: 'outlook' as const,
      resourceId: outlookResource!,
      calendarId: graphCalendar.id,
      token: graph.control.mintToken().accessToken,
      change: async (start: number, end: number) => {
        graph.control.putEvent(graphCalendar.id, {
          subject: 'Booked elsewhere',
          start: { dateTime: new Date(start).toISOString().slice(0, 19), timeZone: 'UTC' },
          end: { dateTime: new Date(end).toISOString().slice(0, 19), timeZone: 'UTC' },
        });
      },
    },
  ];
  for (const side of sides) {
    const connection = await connectCalendar(
      deps,
      actor,
      side.provider,
      {
        resource_id: side.resourceId,
        calendar_id: side.calendarId,
        oauth_token: side.token,
        sync: { realtime: true, frequency_minutes: 0 },
      },
      { publicUrl },
    );
    // The first sync opens the channel (Google) or the subscription (Graph, after its handshake).
    await syncConnection(deps, connection.connection_id);
    const watch = await database.db
      .selectFrom('calendar_watches')
      .select('channel_id')
      .where('connection_id', '=', connection.connection_id)
      .executeTakeFirst();
    if (!watch)
      throw new Error(`provider-push: no ${NAMES[side.provider]} push channel after the first sync`);
  }

  // The worker's syncs, counted from here on: each has started one listChanges once it is under way.
  const callsBefore = calls.length;
  let finished = 0;
  const worker = push.calendarSyncWorker({
    // Only notifications wake the scheduler, so every sync measured is one a notification caused.
    scanIntervalMs: 10 * 60_000,
    pollingIntervalSeconds: POLLING_INTERVAL_SECONDS,
    onOutcome: (outcome) => {
      finished++;
      if (outcome.outcome !== 'ok')
        problems.push(`provider-push: a ${outcome.provider} sync ${outcome.outcome}`);
    },
  });
  const workerStarted = Date.now();
  await worker.start();
  const stopWorker = once(defer, 'stop the calendar sync worker', () => worker.stop());

  const headers = { authorization: `Bearer ${sched.key}` };
  const slotFree = async (resourceId: string, start: number, end: number): Promise<boolean> => {
    const url =
      `${publicUrl}/availability?resource_ids=${resourceId}&start=${new Date(start).toISOString()}` +
      `&end=${new Date(end).toISOString()}&duration_minutes=30`;
    const response = await fetch(url, { headers });
    const body = await response.text();
    if (response.status !== 200) throw new Error(`GET /availability answered ${response.status}: ${body}`);
    return (JSON.parse(body) as { slots: unknown[] }).slots.length > 0;
  };
  // A notification that arrives while the connection's previous sync is still running is dropped
  // (see BENCHMARKS.md), so each change waits for the syncs before it to end.
  const syncsSettled = async () => {
    const deadline = Date.now() + 15_000;
    while (finished < calls.length - callsBefore) {
      if (Date.now() > deadline) {
        problems.push('provider-push: a sync did not end within 15 s');
        return;
      }
      await sleep(5);
    }
  };

  const samples: Record<OAuthProvider, PushSample[]> = { google: [], outlook: [] };
  // Each change lands at its own point of the workers' polling cycle: for each provider the gaps
  // before the changes are spread evenly over one interval, in a shuffled order, so that neither
  // provider draws more of the short or the long waits.
  const random = seededRandom(0x9054);
  const gaps = Object.fromEntries(
    sides.map((side) => {
      const spread = Array.from(
        { length: PUSH_CHANGES },
        (_, index) => ((index + 0.5) * POLLING_INTERVAL_SECONDS * 1000) / PUSH_CHANGES,
      );
      for (let i = spread.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [spread[i], spread[j]] = [spread[j]!, spread[i]!];
      }
      return [side.provider, spread];
    }),
  ) as Record<OAuthProvider, number[]>;
  const firstSlot = dayAfterTomorrowUtc() + 6 * 3_600_000;
  for (let round = 0; round < PUSH_CHANGES; round++) {
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      const start = firstSlot + round * 3_600_000;
      const end = start + 30 * MS_PER_MINUTE;
      await syncsSettled();
      await sleep(gaps[side.provider][round] ?? 0);
      if (!(await slotFree(side.resourceId, start, end))) {
        problems.push(
          `provider-push: the ${NAMES[side.provider]} slot at ${new Date(start).toISOString()} was taken before the change`,
        );
        continue;
      }
      const hooksAt = hooks.length;
      const callsAt = calls.length;
      await side.change(start, end);
      const changed = performance.now();
      let visible = Number.NaN;
      for (let poll = changed; performance.now() - changed < 15_000;) {
        if (!(await slotFree(side.resourceId, start, end))) {
          visible = performance.now();
          break;
        }
        poll += POLL_EVERY_MS;
        await sleep(Math.max(0, poll - performance.now()));
      }
      if (Number.isNaN(visible)) {
        problems.push(`provider-push: a ${NAMES[side.provider]} change was not in availability within 15 s`);
        continue;
      }
      const hook = hooks.slice(hooksAt).find((entry) => entry.provider === side.provider);
      const call = calls.slice(callsAt).find((entry) => entry.provider === side.provider);
      if (!hook || !call) {
        problems.push(
          `provider-push: a ${NAMES[side.provider]} change showed with no notification or no sync`,
        );
        continue;
      }
      samples[side.provider].push({
        latency: visible - changed,
        notified: hook.at - changed,
        queued: call.started - hook.at,
        listing: call.ended - call.started,
        stored: visible - call.ended,
      });
    }
  }
  await syncsSettled();
  // How long each queued sync waited for a worker to fetch it: pg-boss's own timestamps.
  const waits = await sql<{ ms: number }>`
    select extract(epoch from (started_on - created_on))::float8 * 1000 as ms from pgboss.job
    where name = 'calendar-sync' and started_on is not null and created_on >= ${new Date(workerStarted)}`.execute(
    database.db,
  );
  await stopWorker();
  await closeApp();
  await closePush();
  await emulators.stop();

  const rows: BenchRow[] = [];
  for (const side of sides) {
    const taken = samples[side.provider];
    if (taken.length === 0) continue;
    const latencies = taken.map((sample) => sample.latency);
    const middle = median(latencies);
    const p95 = percentile(latencies, 0.95);
    rows.push({
      name: `${NAMES[side.provider]} change → availability via push (ms, median / p95)`,
      ours: middle,
      baseline: Number.NaN,
      unit: 'ms',
      aimKind: 'max',
      text: `${middle.toFixed(0)} / ${p95.toFixed(0)} ms`,
      note:
        `${taken.length} events created at the emulator, each at a free slot; from the call returning to the ` +
        `first GET /availability (polled every ${POLL_EVERY_MS} ms) without the slot; worker polling ` +
        `${POLLING_INTERVAL_SECONDS} s (pg-boss's minimum), concurrency 2; no baseline, no aim set`,
    });
    const part = (key: keyof PushSample) => {
      const values = taken.map((sample) => sample[key]);
      return `${median(values).toFixed(0)} (p95 ${percentile(values, 0.95).toFixed(0)})`;
    };
    details.push(
      `provider-push, ${NAMES[side.provider]}, medians in ms: change → notification at /hooks ${part('notified')}; ` +
        `→ sync's listChanges starts (NOTIFY, scan, pg-boss send, worker poll, lease) ${part('queued')}; ` +
        `listChanges ${part('listing')}; → visible in availability (store, the rest of the sync, ` +
        `poll granularity) ${part('stored')}; total ${part('latency')}`,
    );
  }
  const waited = waits.rows.map((row) => row.ms);
  if (waited.length > 0) {
    details.push(
      `provider-push: the ${waited.length} sync jobs waited in the pg-boss queue (created → started) ` +
        `${median(waited).toFixed(0)} ms median, p95 ${percentile(waited, 0.95).toFixed(0)} ms, at most ` +
        `${Math.max(...waited).toFixed(0)} ms: the workers' polling interval`,
    );
  }
  log(`provider-push: done in ${((performance.now() - benchStarted) / 1000).toFixed(0)} s`);
  return { rows, problems, details };
}
