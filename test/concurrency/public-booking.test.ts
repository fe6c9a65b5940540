import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  type ClonedDatabase,
  cloneTemplateDatabase,
  randomApiKey,
  type SpawnedServer,
  spawnServer,
  stopAll,
} from '../support/spawn-server.js';
import { baseTime, callServer, iso } from '../support/server-calls.js';
import { roundTheClockWeekly } from '../support/schedules.js';

/**
 * 500 attendees book at once through the public endpoints of a 3-person round-robin page, on two
 * `sched serve` processes sharing one real PostgreSQL database: 20 half-hour slots, so at most 60 can
 * win. A held slot is never given away while its holds live, and is given once they expire (by real
 * time, 30 s after they were made).
 */

const skipReason = inject('postgresSkipReason');
const MINUTE = 60_000;
const REQUEST_TIMEOUT_MS = 60_000;
const SLOTS = 20;
const ATTENDEES = 500;
const HELD_SLOT = 7;

const call = (server: SpawnedServer, key: string | null, method: string, url: string, body?: unknown) =>
  callServer(server, key, method, url, body, REQUEST_TIMEOUT_MS);

describe.skipIf(skipReason)(
  `public round-robin booking on two server processes${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  { timeout: 180_000 },
  () => {
    let database: ClonedDatabase | undefined;
    const servers: SpawnedServer[] = [];
    const key = randomApiKey();
    const pool: string[] = [];
    const slotStart = (i: number) => baseTime() + 9 * 60 * MINUTE + i * 30 * MINUTE;
    let holdsExpireAt = 0;

    beforeAll(async () => {
      database = await cloneTemplateDatabase('public-booking');
      const env = {
        DATABASE_URL: database.url,
        SCHED_BOOTSTRAP_API_KEY: key,
        SCHED_PUBLIC_RATE_LIMIT: '100000',
      };
      servers.push(...(await Promise.all([0, 1].map(() => spawnServer(env)))));
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
      const page = await call(servers[0]!, key, 'POST', '/booking-pages', {
        slug: 'consult',
        title: 'Consultation',
        durations_minutes: [30],
        resource_ids: pool,
        assign: 'one',
      });
      expect(page.status, JSON.stringify(page.body)).toBe(201);
      // The held slot: each of the three is held for 30 s, through the API.
      const at = slotStart(HELD_SLOT);
      for (let n = 0; n < 3; n++) {
        const held = await call(servers[n % 2]!, key, 'POST', '/holds', {
          resource_ids: pool,
          start_time: iso(at),
          end_time: iso(at + 30 * MINUTE),
          assign: 'one',
          ttl_seconds: 30,
        });
        expect(held.status, JSON.stringify(held.body)).toBe(201);
        holdsExpireAt = Math.max(holdsExpireAt, Date.parse(held.body.expires_at));
      }
    }, 90_000);

    afterAll(async () => {
      try {
        await stopAll(servers);
      } finally {
        await database?.drop();
      }
    });

    const book = (server: SpawnedServer, slot: number, n: number) =>
      call(server, null, 'POST', '/public/default/consult/bookings', {
        start_time: iso(slotStart(slot)),
        duration_minutes: 30,
        attendee: { name: `Attendee ${n}`, email: `a${n}@example.com`, time_zone: 'Europe/Berlin' },
      }).catch((error: unknown) => ({ status: 0, body: String(error) }));

    async function query<T extends Record<string, unknown>>(text: string): Promise<T[]> {
      const client = await database!.connect();
      try {
        return (await client.query<T>(text)).rows;
      } finally {
        await client.end();
      }
    }

    const OVERLAPS = `
      select count(*)::int as n from booking_resources a join booking_resources b
        on a.resource_id = b.resource_id and a.ctid < b.ctid and a.during && b.during
      where a.status in ('pending', 'confirmed') and b.status in ('pending', 'confirmed')`;

    it('gives each of the 20 slots to exactly three attendees, one per person, and the held slot to none', async () => {
      await Promise.all(servers.map((server) => call(server, null, 'GET', '/public/default/consult')));
      const replies = await Promise.all(
        Array.from({ length: ATTENDEES }, (_, n) => book(servers[n % 2]!, n % SLOTS, n)),
      );
      const odd = replies.filter((reply) => reply.status !== 201 && reply.status !== 409);
      expect(odd).toEqual([]);
      const won = replies.filter((reply) => reply.status === 201);
      expect(won).toHaveLength((SLOTS - 1) * 3);
      for (const reply of replies.filter((r) => r.status === 409)) {
        expect(reply.body.code).toBe('SLOT_UNAVAILABLE');
        expect(JSON.stringify(reply.body)).not.toMatch(/resource/);
      }
      expect(won.some((reply) => reply.body.start_time === iso(slotStart(HELD_SLOT)))).toBe(false);
      // Every 201 is stored, with its manage token's hash, on one person.
      const stored = await query<{ booking_id: string; people: number; tokens: number }>(`
        select b.booking_id::text, cardinality(b.resource_ids) as people,
          (select count(*)::int from public_bookings p where p.booking_id = b.booking_id) as tokens
        from bookings b where b.status = 'confirmed'`);
      const byId = new Map(stored.map((row) => [row.booking_id, row]));
      for (const reply of won) {
        expect(byId.get(reply.body.booking_id)).toMatchObject({ people: 1, tokens: 1 });
      }
      expect(stored).toHaveLength(won.length);
      const perPerson = await query<{ resource_id: string; n: number }>(`
        select resource_id::text, count(*)::int as n from booking_resources
        where status = 'confirmed' group by resource_id`);
      expect(perPerson.map((row) => row.n)).toEqual([SLOTS - 1, SLOTS - 1, SLOTS - 1]);
      expect((await query<{ n: number }>(OVERLAPS))[0]!.n).toBe(0);
    });

    it('gives the held slot once its holds have expired by real time', async () => {
      // The holds' own expiry instant, read from their answers; the servers judge it by their clocks.
      const wait = holdsExpireAt + 200 - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const replies = await Promise.all(
        Array.from({ length: 12 }, (_, n) => book(servers[n % 2]!, HELD_SLOT, 1000 + n)),
      );
      expect(replies.filter((reply) => reply.status !== 201 && reply.status !== 409)).toEqual([]);
      expect(replies.filter((reply) => reply.status === 201)).toHaveLength(3);
      expect((await query<{ n: number }>(OVERLAPS))[0]!.n).toBe(0);
    });

    it('negative control: the overlap query finds an overlap when one is there', async () => {
      const client = await database!.connect();
      try {
        await client.query('begin');
        await client.query('alter table booking_resources drop constraint booking_resources_no_overlap');
        // One booking moved onto another's time of the same person, as a race without the constraint would leave it.
        await client.query(`
          with pair as (
            select a.booking_id as moved, b.during from booking_resources a join booking_resources b
              on a.resource_id = b.resource_id and a.booking_id <> b.booking_id
            where a.status = 'confirmed' and b.status = 'confirmed' limit 1)
          update booking_resources r set during = pair.during from pair where r.booking_id = pair.moved`);
        const found = await client.query<{ n: number }>(OVERLAPS);
        expect(found.rows[0]!.n).toBe(1);
      } finally {
        await client.query('rollback');
        await client.end();
      }
    });
  },
);
