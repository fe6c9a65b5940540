import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import {
  cloneTemplateDatabase,
  makeTempDir,
  apiRequest,
  randomApiKey,
  spawnServer,
  type ClonedDatabase,
  type ServerEntry,
  type SpawnedServer,
} from '../support/spawn-server.js';
import { waitForValue } from '../support/wait-for.js';
import { feedServer, HOSTILE_FEEDS, measureWhile, rssOf, type Latencies } from '../support/hostile-feeds.js';

/*
 * The hostile calendars of the hardening work, each synced by a real `sched serve` process while this
 * test asks /healthz and an API read every few milliseconds: reading a calendar runs on the parser's
 * worker threads, so neither waits for the sync. Run on PostgreSQL from the built dist/ and on the
 * embedded database from the TypeScript sources, so both ways of loading the worker thread are used.
 */

/**
 * Before the parser's threads, these syncs held the event loop for 5 to 18 s at a time. How fast the
 * answers come meanwhile (the aim is 100 ms at the slowest) is a figure of `npm run bench`; this test
 * fails on a stall, whatever else the machine runs at the same time.
 */
const STALL_LIMIT_MS = 1000;
const MB = 2 ** 20;
/**
 * With PostgreSQL the whole process stays under 512 MB. The embedded database is PostgreSQL compiled
 * to WebAssembly inside the process, and its memory alone is 400 to 550 MB before any calendar (it
 * never gives memory back to the system): there, what a sync adds to the idle process is bounded.
 */
const RSS_LIMIT = 512 * MB;
const EMBEDDED_GROWTH_LIMIT = 384 * MB;

const postgres = backends.find((backend) => backend.name === 'postgres')!;

type Setup = { label: string; entry: ServerEntry; skip: string | null };
const SETUPS: Setup[] = [
  { label: 'PostgreSQL, from dist/', entry: 'built', skip: postgres.skipReason ?? null },
  { label: 'the embedded database, from the sources', entry: 'source', skip: null },
];

for (const setup of SETUPS) {
  describe.skipIf(setup.skip)(
    `the API answers while hostile calendars sync (${setup.label})${setup.skip ? ` — SKIPPED: ${setup.skip}` : ''}`,
    () => {
      const feeds = feedServer();
      let base = '';
      const key = randomApiKey();
      let database: ClonedDatabase | undefined;
      let dataDir: ReturnType<typeof makeTempDir> | undefined;
      let sched: SpawnedServer;
      let resourceId = '';
      let idleRss = 0;

      beforeAll(async () => {
        base = await feeds.listen();
        const storage: Record<string, string> = {};
        if (setup.entry === 'built') {
          database = await cloneTemplateDatabase('eventloop');
          storage.DATABASE_URL = database.url;
        } else {
          dataDir = makeTempDir('eventloop');
          storage.SCHED_DATA_DIR = dataDir.dir;
        }
        sched = await spawnServer(
          { ...storage, SCHED_BOOTSTRAP_API_KEY: key, SCHED_OUTBOUND_ALLOW: '127.0.0.1/32' },
          60_000,
          { entry: setup.entry },
        );
        const resource = await call('POST', '/resources', { name: 'Ana', kind: 'person', time_zone: 'UTC' });
        expect(resource.status).toBe(201);
        resourceId = resource.body.resource_id as string;
        idleRss = rssOf(sched.pid);
      }, 120_000);

      afterAll(async () => {
        await sched?.stop();
        await database?.drop();
        dataDir?.remove();
        await feeds.close();
      });

      const call = (method: string, path: string, body?: unknown) =>
        apiRequest(sched, key, method, path, body);

      for (const feed of HOSTILE_FEEDS) {
        it(`${feed.name}: /healthz and GET /resources answer without a stall, memory bounded`, async () => {
          const path = `/${feed.name.replace(/\W+/g, '-')}.ics`;
          feeds.bodies.set(path, feed.make(Date.now()));
          let id = '';
          let shown: Record<string, any> = {};
          const { healthz, api, rss } = await measureWhile(
            sched,
            async () => {
              expect((await call('GET', '/resources?limit=5')).status).toBe(200);
            },
            async () => {
              // Connecting reads the feed once; the server's worker then syncs it.
              const connected = await call('POST', '/calendars/ics/connect', {
                resource_id: resourceId,
                url: `${base}${path}`,
              });
              expect(connected.status, JSON.stringify(connected.body)).toBe(201);
              id = connected.body.connection_id as string;
              shown = await waitForValue(
                `the first sync of the ${feed.name}`,
                async () => {
                  const view = await call('GET', `/calendars/ics/${id}`);
                  return view.body.last_synced_at || view.body.status === 'error' ? view.body : undefined;
                },
                120_000,
                100,
              );
            },
          );
          const figures = (f: Latencies) =>
            `slowest ${f.slowest.toFixed(1)} ms, p99 ${f.p99.toFixed(1)} ms, median ${f.median.toFixed(1)} ms (${f.count} asked)`;
          console.log(
            `${setup.label}, ${feed.name}: /healthz ${figures(healthz)}; GET /resources ${figures(api)}; ` +
              `max RSS ${Math.round(rss / MB)} MB (idle ${Math.round(idleRss / MB)} MB)`,
          );
          expect(shown.status, JSON.stringify(shown)).toBe('active');
          expect(healthz.slowest).toBeLessThan(STALL_LIMIT_MS);
          expect(api.slowest).toBeLessThan(STALL_LIMIT_MS);
          if (setup.entry === 'built') expect(rss).toBeLessThan(RSS_LIMIT);
          else expect(rss - idleRss).toBeLessThan(EMBEDDED_GROWTH_LIMIT);
          // The connection goes, so the next calendar is read alone.
          expect((await call('DELETE', `/calendars/ics/${id}`)).status).toBe(200);
        }, 180_000);
      }
    },
  );
}
