import { type KyselyPlugin, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BookableResource } from '../../src/services/bookable-resources.js';
import { BusyIndex, readBusyTime } from '../../src/services/busy-index.js';
import { defaultSchedule } from '../../src/domain/index.js';
import type { Db } from '../../src/storage/database.js';
import { backends, describeOnBackends } from '../support/backends.js';
import { gate } from '../support/gate.js';
import { createOpenResource } from '../support/resources.js';
import {
  apiRequest,
  type ClonedDatabase,
  cloneTemplateDatabase,
  randomApiKey,
  type SpawnedServer,
  spawnServer,
  stopAll,
} from '../support/spawn-server.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The busy index keeps each resource's busy time in memory. These tests change busy time behind the
 * API's back (as a sync, another process or an operator would) and show that availability never
 * answers from what was kept before the change, on both databases and across real processes.
 */

const NOW = '2026-03-16T06:00:00Z';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** The index's bucket length: a booking across a multiple of it is kept in two buckets. */
const BUCKET_MS = 2 ** 31;
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

async function insertBooking(db: Db, organizationId: string, resourceId: string, start: number, end: number) {
  await sql`
    with inserted as (
      insert into bookings (organization_id, status, resource_ids, start_time, end_time, title)
      values (${organizationId}::uuid, 'confirmed', array[${resourceId}::uuid], ${new Date(start)},
              ${new Date(end)}, 'written behind the API')
      returning booking_id, start_time, end_time)
    insert into booking_resources (booking_id, resource_id, organization_id, during, status)
    select booking_id, ${resourceId}::uuid, ${organizationId}::uuid,
           tstzrange(start_time, end_time, '[)'), 'confirmed' from inserted`.execute(db);
}

async function slotStarts(t: TestApp, resourceId: string, start: number, end: number): Promise<string[]> {
  const res = await t.request('GET', '/availability', {
    query: { resource_ids: resourceId, start: iso(start), end: iso(end), duration_minutes: '60' },
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ slots: { start_time: string }[] }>().slots.map((slot) => slot.start_time);
}

/** Resources read from memory so far, from the app's own /metrics figures. */
async function memoryReads(metricsText: string): Promise<number> {
  const line = metricsText
    .split('\n')
    .find((l) => l.startsWith('sched_busy_index_reads_total{source="memory"}'));
  return Number(line?.split(' ').at(-1) ?? 0);
}

const appMemoryReads = async (t: TestApp) => memoryReads(await t.deps.metrics.registry.metrics());

function bookable(resourceId: string): BookableResource {
  return { resourceId, timeZone: 'UTC', schedule: defaultSchedule('UTC'), hasBlockingCalendars: false };
}

/** A deterministic sequence in [0, 1). */
function seeded(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

describeOnBackends(
  'the busy index',
  (t) => {
    it('answers from memory, and never from what it kept before a change written behind the API', async () => {
      const resourceId = await createOpenResource(t(), { name: 'Room', kind: 'room', time_zone: 'UTC' });
      const day = Date.parse('2026-03-18T00:00:00Z');
      expect(await slotStarts(t(), resourceId, day, day + DAY)).toHaveLength(24);
      const before = await appMemoryReads(t());
      expect(await slotStarts(t(), resourceId, day, day + DAY)).toHaveLength(24);
      expect(await appMemoryReads(t())).toBeGreaterThan(before);

      await insertBooking(t().database.db, t().organizationId, resourceId, day + 10 * HOUR, day + 11 * HOUR);
      const after = await slotStarts(t(), resourceId, day, day + DAY);
      expect(after).toHaveLength(23);
      expect(after).not.toContain('2026-03-18T10:00:00Z');

      await sql`update booking_resources set status = 'cancelled' where resource_id = ${resourceId}::uuid`.execute(
        t().database.db,
      );
      expect(await slotStarts(t(), resourceId, day, day + DAY)).toHaveLength(24);
    });

    it('keeps a booking across two of its buckets once, and shows it in windows on either side', async () => {
      const resourceId = await createOpenResource(t(), { name: 'Desk', kind: 'equipment', time_zone: 'UTC' });
      const boundary = Math.ceil(Date.parse('2026-03-20T00:00:00Z') / BUCKET_MS) * BUCKET_MS;
      const start = boundary - 30 * 60_000;
      const booked = await t().request('POST', '/bookings', {
        body: {
          resource_ids: [resourceId],
          start_time: iso(start),
          end_time: iso(start + HOUR),
          title: 'Across',
        },
      });
      expect(booked.statusCode, booked.body).toBe(201);
      const freebusy = async (from: number, to: number) => {
        const res = await t().request('POST', '/freebusy', {
          body: { resource_ids: [resourceId], start: iso(from), end: iso(to) },
        });
        expect(res.statusCode, res.body).toBe(200);
        return res.json().resources[resourceId].busy as { start_time: string; end_time: string }[];
      };
      for (let round = 0; round < 2; round++) {
        expect(await freebusy(boundary - DAY, boundary + DAY)).toEqual([
          { start_time: iso(start), end_time: iso(start + HOUR), source: 'booking' },
        ]);
        expect(await freebusy(boundary, boundary + DAY)).toEqual([
          { start_time: iso(boundary), end_time: iso(start + HOUR), source: 'booking' },
        ]);
        expect(await freebusy(boundary - DAY, boundary)).toEqual([
          { start_time: iso(start), end_time: iso(boundary), source: 'booking' },
        ]);
      }
    });

    it('answers as the database does for any window, and stays within its memory bound', async () => {
      const { db } = t().database;
      const ids: string[] = [];
      const random = seeded(7);
      const origin = Math.floor(Date.parse('2026-04-01T00:00:00Z') / BUCKET_MS) * BUCKET_MS;
      for (let r = 0; r < 5; r++) {
        const id = await createOpenResource(t(), { name: `Bound ${r}`, kind: 'room', time_zone: 'UTC' });
        ids.push(id);
        // Twelve bookings of two hours every five days around two bucket boundaries, one across each.
        for (let k = 0; k < 12; k++) {
          const start = origin - 30 * DAY + k * 5 * DAY + Math.floor(random() * 20) * HOUR;
          await insertBooking(db, t().organizationId, id, start, start + 2 * HOUR);
        }
        await insertBooking(db, t().organizationId, id, origin - HOUR, origin + HOUR);
        await insertBooking(db, t().organizationId, id, origin + BUCKET_MS - HOUR, origin + BUCKET_MS + HOUR);
      }
      const index = new BusyIndex({ db, listen: t().database.listen, maxIntervals: 60 });
      await index.start();
      try {
        for (let round = 0; round < 40; round++) {
          const chosen = ids.filter(() => random() < 0.5);
          const resources = (chosen.length > 0 ? chosen : [ids[0]!]).map(bookable);
          const start =
            origin - 35 * DAY + Math.floor(random() * 60) * DAY + Math.floor(random() * 24) * HOUR;
          const range = { start, end: start + (1 + Math.floor(random() * 40)) * DAY };
          const fromIndex = await index.read(resources, range);
          const fromDatabase = await readBusyTime(db, resources, range);
          expect(Object.fromEntries(fromIndex.bookings)).toEqual(Object.fromEntries(fromDatabase.bookings));
          expect(index.size).toBeLessThanOrEqual(60);
        }
        expect(index.stats.hits).toBeGreaterThan(0);
        expect(index.stats.evictions).toBeGreaterThan(0);
      } finally {
        await index.close();
      }
    });
  },
  NOW,
);

const skipReason = inject('postgresSkipReason');
const postgres = backends.find((backend) => backend.name === 'postgres')!;

describe.skipIf(skipReason)(
  `the busy index across processes on PostgreSQL${skipReason ? ` — SKIPPED: ${skipReason}` : ''}`,
  () => {
    let t: TestApp | undefined;
    beforeAll(async () => {
      t = await startTestApp(postgres, NOW);
    });
    afterAll(async () => t?.close());

    it('does not keep what a read took in before a change committed during it', async () => {
      const app = t!;
      const resourceId = await createOpenResource(app, { name: 'Gated', kind: 'room', time_zone: 'UTC' });
      const day = Date.parse('2026-03-19T00:00:00Z');
      const held = gate();
      const reached = gate();
      let armed = true;
      const holdFills: KyselyPlugin = {
        transformQuery: (args) => args.node,
        transformResult: async (args) => {
          if (armed && args.result.rows.some((row) => 'start_ms' in (row as object))) {
            armed = false;
            reached.open();
            await held.opened;
          }
          return args.result;
        },
      };
      // One booking already there, so the fill returns rows the plugin can recognise.
      await insertBooking(app.database.db, app.organizationId, resourceId, day + 2 * HOUR, day + 3 * HOUR);
      const db = app.database.db.withPlugin(holdFills);
      const index = new BusyIndex({ db, listen: app.database.listen });
      await index.start();
      try {
        const range = { start: day, end: day + DAY };
        const first = index.read([bookable(resourceId)], range);
        await reached.opened;
        const invalidations = index.stats.invalidations;
        await insertBooking(app.database.db, app.organizationId, resourceId, day + 9 * HOUR, day + 10 * HOUR);
        // The change is heard while the fill is still held.
        await expect.poll(() => index.stats.invalidations, { timeout: 5_000 }).toBeGreaterThan(invalidations);
        held.open();
        await first;
        const fills = index.stats.fills;
        const second = await index.read([bookable(resourceId)], range);
        expect(second.bookings.get(resourceId)).toEqual([
          { start: day + 2 * HOUR, end: day + 3 * HOUR },
          { start: day + 9 * HOUR, end: day + 10 * HOUR },
        ]);
        expect(index.stats.fills).toBe(fills + 1);
        // Kept now: the next read comes from memory.
        const hits = index.stats.hits;
        await index.read([bookable(resourceId)], range);
        expect(index.stats.hits).toBe(hits + 1);
      } finally {
        await index.close();
      }
    });

    it('reads the database while its listener is cut off, and memory again once it is back', async () => {
      const app = t!;
      const resourceId = await createOpenResource(app, { name: 'Cut off', kind: 'room', time_zone: 'UTC' });
      const day = Date.parse('2026-03-20T00:00:00Z');
      expect(await slotStarts(app, resourceId, day, day + DAY)).toHaveLength(24);
      const terminated = await sql<{ pid: number }>`
      select pg_terminate_backend(pid) as pid from pg_stat_activity
      where datname = current_database() and application_name = 'sched listen sched_busy'`.execute(
        app.database.db,
      );
      expect(terminated.rows.length).toBeGreaterThan(0);
      await insertBooking(app.database.db, app.organizationId, resourceId, day + 3 * HOUR, day + 4 * HOUR);
      const meanwhile = await slotStarts(app, resourceId, day, day + DAY);
      expect(meanwhile).toHaveLength(23);
      expect(meanwhile).not.toContain('2026-03-20T03:00:00Z');
      // Back: answered from memory again, and still right.
      await expect
        .poll(
          async () => {
            const before = await appMemoryReads(app);
            const slots = await slotStarts(app, resourceId, day, day + DAY);
            expect(slots).toHaveLength(23);
            return (await appMemoryReads(app)) - before;
          },
          { timeout: 15_000, interval: 200 },
        )
        .toBeGreaterThan(0);
      await insertBooking(app.database.db, app.organizationId, resourceId, day + 5 * HOUR, day + 6 * HOUR);
      expect(await slotStarts(app, resourceId, day, day + DAY)).toHaveLength(22);
    });

    describe('two sched serve processes', () => {
      let database: ClonedDatabase | undefined;
      const servers: SpawnedServer[] = [];
      const key = randomApiKey();
      beforeAll(async () => {
        database = await cloneTemplateDatabase('busy');
        for (let i = 0; i < 2; i++) {
          servers.push(
            await spawnServer({ DATABASE_URL: database.url, SCHED_BOOTSTRAP_API_KEY: key }, 45_000, {
              entry: 'built',
            }),
          );
        }
      });
      afterAll(async () => {
        await stopAll(servers);
        await database?.drop();
      });

      it('a booking through one process is gone from the other process’s availability at once', async () => {
        const [a, b] = servers as [SpawnedServer, SpawnedServer];
        const created = await apiRequest(a, key, 'POST', '/resources', {
          name: 'Shared room',
          kind: 'room',
          time_zone: 'UTC',
        });
        expect(created.status).toBe(201);
        const resourceId = created.body.resource_id as string;
        const weekly = Object.fromEntries(
          ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [['00:00', '24:00']]]),
        );
        expect(
          (await apiRequest(a, key, 'PUT', `/resources/${resourceId}/schedule`, { weekly })).status,
        ).toBe(200);
        const day = Math.ceil((Date.now() + 2 * DAY) / DAY) * DAY;
        const path = `/availability?resource_ids=${resourceId}&start=${iso(day)}&end=${iso(day + DAY)}&duration_minutes=60`;
        const slotsOn = async (server: SpawnedServer) => {
          const res = await apiRequest(server, key, 'GET', path);
          expect(res.status).toBe(200);
          return (res.body.slots as { start_time: string }[]).map((slot) => slot.start_time);
        };
        const delays: number[] = [];
        for (let hour = 0; hour < 10; hour++) {
          expect(await slotsOn(b)).toHaveLength(24 - hour);
          const booked = await apiRequest(a, key, 'POST', '/bookings', {
            resource_ids: [resourceId],
            start_time: iso(day + hour * HOUR),
            end_time: iso(day + (hour + 1) * HOUR),
            title: `Hour ${hour}`,
          });
          expect(booked.status).toBe(201);
          const committed = performance.now();
          const seen = await slotsOn(b);
          delays.push(performance.now() - committed);
          expect(seen).toHaveLength(23 - hour);
          expect(seen).not.toContain(iso(day + hour * HOUR));
        }
        expect(Math.max(...delays)).toBeLessThan(100);
        const metrics = await fetch(`${b.url}/metrics`, { headers: { authorization: `Bearer ${key}` } });
        expect(await memoryReads(await metrics.text())).toBeGreaterThan(0);
      });
    });
  },
);
