import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  type ClonedDatabase,
  cloneTemplateDatabase,
  randomApiKey,
  type SpawnedServer,
  spawnServer,
  stopAll,
} from '../support/spawn-server.js';
import { baseTime, callServer, iso, type Reply } from '../support/server-calls.js';
import { roundTheClockWeekly } from '../support/schedules.js';

/**
 * Two `sched serve` processes on one real PostgreSQL database take many simultaneous round-robin
 * bookings and holds for a pool of three people. Each request chooses its person inside its own
 * transaction; only the database keeps two of them from taking one person at one time.
 */

const skipReason = inject('postgresSkipReason');
const MINUTE = 60_000;
const REQUEST_TIMEOUT_MS = 30_000;

const call = (server: SpawnedServer, key: string, method: string, url: string, body?: unknown) =>
  callServer(server, key, method, url, body, REQUEST_TIMEOUT_MS);

type Outcome = { path: string; body: Record<string, unknown>; reply: Reply };

describe.skipIf(skipReason)(
  `round-robin on two server processes${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  { timeout: 120_000 },
  () => {
    let database: ClonedDatabase | undefined;
    const servers: SpawnedServer[] = [];
    const key = randomApiKey();
    const pool: string[] = [];

    beforeAll(async () => {
      database = await cloneTemplateDatabase('round-robin');
      const started = await Promise.all(
        [0, 1].map(() => spawnServer({ DATABASE_URL: database!.url, SCHED_BOOTSTRAP_API_KEY: key })),
      );
      servers.push(...started);
      for (const name of ['Ada', 'Grace', 'Linus']) {
        const created = await call(servers[0]!, key, 'POST', '/resources', {
          name,
          kind: 'person',
          time_zone: 'UTC',
        });
        expect(created.status).toBe(201);
        const id = created.body.resource_id as string;
        const schedule = await call(servers[0]!, key, 'PUT', `/resources/${id}/schedule`, {
          time_zone: 'UTC',
          weekly: roundTheClockWeekly(),
        });
        expect(schedule.status).toBe(200);
        pool.push(id);
      }
    }, 60_000);

    afterAll(async () => {
      try {
        await stopAll(servers);
      } finally {
        await database?.drop();
      }
    });

    async function fire(requests: { path: string; body: Record<string, unknown> }[]): Promise<Outcome[]> {
      // Open the connections first, so the requests reach the servers together.
      await Promise.all(requests.map((_, i) => call(servers[i % 2]!, key, 'GET', '/resources?limit=1')));
      return Promise.all(
        requests.map(async (request, i) => ({
          ...request,
          reply: await call(servers[i % 2]!, key, 'POST', request.path, request.body).catch(
            (error: unknown) => ({ status: 0, body: String(error) }),
          ),
        })),
      );
    }

    const serverErrors = () =>
      servers
        .flatMap((server) => server.stdout().split('\n'))
        .filter((line) => /"level":(40|50|60)\b/.test(line))
        .slice(0, 5)
        .join('\n');

    async function overlaps(): Promise<number> {
      const client = await database!.connect();
      try {
        const result = await client.query(`
          select 1 from booking_resources a join booking_resources b
            on a.resource_id = b.resource_id and a.ctid < b.ctid and a.during && b.during
          where a.status in ('pending', 'confirmed', 'held') and b.status in ('pending', 'confirmed', 'held')`);
        return result.rowCount ?? 0;
      } finally {
        await client.end();
      }
    }

    async function stored(outcome: Outcome): Promise<string[]> {
      const client = await database!.connect();
      try {
        const isHold = outcome.path === '/holds';
        const id = isHold ? outcome.reply.body.hold_id : outcome.reply.body.booking_id;
        const result = await client.query<{ resource_id: string }>(
          `select resource_id::text from booking_resources where ${isHold ? 'hold_id' : 'booking_id'} = $1`,
          [id],
        );
        return result.rows.map((row) => row.resource_id);
      } finally {
        await client.end();
      }
    }

    it('gives one hour to exactly three requests, one per person', async () => {
      const start = baseTime() + 9 * 60 * MINUTE;
      const requests = Array.from({ length: 40 }, (_, i) => {
        const times = { resource_ids: pool, start_time: iso(start), end_time: iso(start + 60 * MINUTE) };
        return i % 2 === 0
          ? { path: '/bookings', body: { ...times, title: `RR ${i}`, assign: 'one' } }
          : { path: '/holds', body: { ...times, assign: 'one', ttl_seconds: 600 } };
      });
      const outcomes = await fire(requests);
      const odd = outcomes.filter((o) => o.reply.status !== 201 && o.reply.status !== 409);
      expect(odd.map((o) => o.reply)).toEqual([]);
      const won = outcomes.filter((o) => o.reply.status === 201);
      expect(won).toHaveLength(3);
      const chosen = won.map((o) => (o.reply.body.resource_ids as string[])[0]).sort();
      expect(chosen).toEqual([...pool].sort());
      for (const o of won) expect(await stored(o)).toEqual(o.reply.body.resource_ids);
      for (const o of outcomes.filter((x) => x.reply.status === 409)) {
        expect(o.reply.body.code).toBe('SLOT_UNAVAILABLE');
      }
      expect(await overlaps()).toBe(0);
    });

    it('never gives one person two overlapping times under a mixed load', async () => {
      const start = baseTime() + 30 * 60 * MINUTE;
      const requests = Array.from({ length: 80 }, (_, i) => {
        const from = start + (i % 8) * 15 * MINUTE;
        const times = { resource_ids: pool, start_time: iso(from), end_time: iso(from + 45 * MINUTE) };
        return i % 3 === 0
          ? { path: '/holds', body: { ...times, assign: 'one' } }
          : { path: '/bookings', body: { ...times, title: `Mixed ${i}`, assign: 'one' } };
      });
      const outcomes = await fire(requests);
      const odd = outcomes.filter((o) => o.reply.status !== 201 && o.reply.status !== 409);
      let activity = '';
      if (odd.length > 0) {
        // What the database sessions wait on, should a request hang.
        const client = await database!.connect();
        const rows = await client.query(
          `select state, wait_event_type, wait_event, left(query, 120) as q
           from pg_stat_activity where datname = current_database()`,
        );
        await client.end();
        activity = JSON.stringify(rows.rows);
      }
      expect(
        odd.map((o) => o.reply),
        `${serverErrors()}\n${activity}`,
      ).toEqual([]);
      const won = outcomes.filter((o) => o.reply.status === 201);
      expect(won.length).toBeGreaterThan(0);
      for (const o of won) {
        expect(o.reply.body.resource_ids).toHaveLength(1);
        expect(await stored(o)).toEqual(o.reply.body.resource_ids);
      }
      expect(await overlaps()).toBe(0);
    });
  },
);
