import { buildDist } from '../test/support/build-dist.js';
import { feedServer, HOSTILE_FEEDS, measureWhile } from '../test/support/hostile-feeds.js';
import {
  apiRequest,
  makeTempDir,
  randomApiKey,
  spawnServer,
  type SpawnedServer,
} from '../test/support/spawn-server.js';
import type { BenchContext, BenchOutcome } from './context.js';
import type { Defer } from './calendars.js';
import { type BenchRow, createBenchDatabase, log } from './support.js';

/** The aim: during a sync of any hostile calendar, /healthz answers within this. */
const AIM_MS = 100;
const IDLE_PROBE_MS = 3000;
const MB = 2 ** 20;

/**
 * GET /healthz and GET /resources of a built `sched serve` process while it syncs each hostile
 * calendar, against the same requests to the same idle process: the slowest answer of each, with the
 * issue's absolute aim (100 ms) checked beside the ratio. On PostgreSQL and on the embedded database.
 */
export async function benchResponsiveness(context: BenchContext, defer: Defer): Promise<BenchOutcome> {
  log('responsiveness: building dist/ for the server process');
  await buildDist();
  const feeds = feedServer();
  const base = await feeds.listen();
  defer('stop the feed server', () => feeds.close());
  const rows: BenchRow[] = [];
  const details: string[] = [];
  const problems: string[] = [];
  const database = await createBenchDatabase(context.settings.adminUrl);
  defer(`drop database ${database.name}`, () => database.drop());
  const dataDir = makeTempDir('bench-responsiveness');
  defer('remove the embedded data folder', () => dataDir.remove());
  const setups: { label: string; env: Record<string, string> }[] = [
    { label: 'PostgreSQL', env: { DATABASE_URL: database.url } },
    ...(context.settings.pglite ? [{ label: 'embedded', env: { SCHED_DATA_DIR: dataDir.dir } }] : []),
  ];
  for (const setup of setups) {
    const key = randomApiKey();
    log(`responsiveness: sched serve on ${setup.label}`);
    const sched = await spawnServer(
      { ...setup.env, SCHED_BOOTSTRAP_API_KEY: key, SCHED_OUTBOUND_ALLOW: '127.0.0.1/32' },
      60_000,
      { entry: 'built' },
    );
    try {
      const api = client(sched, key);
      const resource = await api('POST', '/resources', { name: 'Ana', kind: 'person', time_zone: 'UTC' });
      const resourceId = resource.resource_id as string;
      const read = async () => {
        await api('GET', '/resources?limit=5');
      };
      const idle = await measureWhile(
        sched,
        read,
        () => new Promise((resolve) => setTimeout(resolve, IDLE_PROBE_MS)),
      );
      for (const feed of HOSTILE_FEEDS) {
        const path = `/${feed.name.replace(/\W+/g, '-')}-${setup.label}.ics`;
        feeds.bodies.set(path, feed.make(Date.now()));
        let connectionId = '';
        let lastError = '';
        const during = await measureWhile(sched, read, async () => {
          const connected = await api('POST', '/calendars/ics/connect', {
            resource_id: resourceId,
            url: `${base}${path}`,
          });
          connectionId = connected.connection_id as string;
          const deadline = Date.now() + 180_000;
          for (;;) {
            const view = await api('GET', `/calendars/ics/${connectionId}`);
            if (view.last_synced_at || view.status === 'error') {
              lastError = (view.last_error as string | null) ?? '';
              if (view.status === 'error') problems.push(`${feed.name} on ${setup.label}: ${lastError}`);
              break;
            }
            if (Date.now() > deadline) throw new Error(`${feed.name} on ${setup.label}: no sync in 180 s`);
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        });
        await api('DELETE', `/calendars/ics/${connectionId}`);
        const name = `slowest GET /healthz while syncing ${feed.name}, ${setup.label}`;
        rows.push({
          name,
          ours: during.healthz.slowest,
          baseline: idle.healthz.slowest,
          unit: 'ms',
          aimKind: 'max',
          note:
            `idle process as baseline; p99 ${during.healthz.p99.toFixed(1)} ms; GET /resources slowest ` +
            `${during.api.slowest.toFixed(1)} ms (idle ${idle.api.slowest.toFixed(1)} ms); ` +
            `max RSS ${Math.round(during.rss / MB)} MB (idle ${Math.round(idle.rss / MB)} MB)` +
            (lastError ? `; last_error: ${lastError.slice(0, 80)}` : ''),
        });
        const met = during.healthz.slowest <= AIM_MS;
        details.push(
          `${name}: ${during.healthz.slowest.toFixed(1)} ms, aim ${AIM_MS} ms: ${met ? 'met' : 'missed'}` +
            (met
              ? ''
              : ' (parsing runs on a worker thread; what is left on the answering thread is storing ' +
                'rows, and the cores are shared with the parser and the database)'),
        );
      }
    } finally {
      await sched.stop();
    }
  }
  return { rows, problems, details };
}

/** Requests whose answer must be a success: anything else stops the benchmark. */
function client(sched: SpawnedServer, key: string) {
  return async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
    const answer = await apiRequest(sched, key, method, path, body);
    if (answer.status >= 300) {
      throw new Error(`${method} ${path} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    }
    return answer.body;
  };
}
