import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  type ClonedDatabase,
  cloneTemplateDatabase,
  randomApiKey,
  type SpawnedServer,
  spawnServer,
  stopAll,
} from '../support/spawn-server.js';
import { baseTime, callServer, iso, readReply } from '../support/server-calls.js';
import { roundTheClockWeekly } from '../support/schedules.js';
import { countdown, gate, type Gate } from '../support/gate.js';

/**
 * Two `sched serve` processes on one real PostgreSQL database take hundreds of simultaneous bookings at
 * overlapping times. Only the database can keep two confirmed bookings of a resource apart here: the
 * processes share no memory, and a check before the insert races. A negative control without the
 * exclusion constraint shows the overlap query does find double bookings when they happen.
 */

const skipReason = inject('postgresSkipReason');
const MINUTE = 60_000;
const REQUEST_TIMEOUT_MS = 30_000;

type Cluster = { database: ClonedDatabase; servers: SpawnedServer[]; key: string };

async function startCluster(label: string, prepare?: (database: ClonedDatabase) => Promise<void>) {
  const database = await cloneTemplateDatabase(label);
  const cluster: Cluster = { database, servers: [], key: randomApiKey() };
  try {
    if (prepare) await prepare(database);
    const started = await Promise.allSettled(
      [0, 1].map(() => spawnServer({ DATABASE_URL: database.url, SCHED_BOOTSTRAP_API_KEY: cluster.key })),
    );
    for (const result of started) if (result.status === 'fulfilled') cluster.servers.push(result.value);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    return cluster;
  } catch (error) {
    await stopCluster(cluster);
    throw error;
  }
}

async function stopCluster(cluster: Cluster | undefined): Promise<void> {
  if (!cluster) return;
  try {
    await stopAll(cluster.servers);
  } finally {
    await cluster.database.drop();
  }
}

const call = (server: SpawnedServer, key: string, method: string, url: string, body?: unknown) =>
  callServer(server, key, method, url, body, REQUEST_TIMEOUT_MS);

async function createResource(cluster: Cluster, name: string, alwaysOpen: boolean): Promise<string> {
  const server = cluster.servers[0]!;
  const created = await call(server, cluster.key, 'POST', '/resources', {
    name,
    kind: 'room',
    time_zone: 'UTC',
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const id = created.body.resource_id as string;
  if (alwaysOpen) {
    const schedule = await call(server, cluster.key, 'PUT', `/resources/${id}/schedule`, {
      time_zone: 'UTC',
      weekly: roundTheClockWeekly(),
    });
    expect(schedule.status, JSON.stringify(schedule.body)).toBe(200);
  }
  return id;
}

type BookingRequest = {
  resource_ids: string[];
  start_time: string;
  end_time: string;
  title: string;
  ignore_availability?: boolean;
};

type Outcome = { request: BookingRequest; server: number; status: number; body: any };

/**
 * A body held back until `release` opens. With no queue to fill (high-water mark 0), `pull` runs only
 * when the client reads the body, which it does once the request has its connection and is about to
 * be written (the client sends the head with the first chunk): `waiting` says so.
 */
function heldBody(json: string, release: Gate, waiting: () => void): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(json);
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        waiting();
        await release.opened;
        controller.enqueue(bytes);
        controller.close();
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * Sends every request at once, alternating between the servers; a request that fails to answer throws.
 * Reads first open the HTTP connections and fill each server's database pool; then all bookings are sent
 * with their bodies held back, and released together, so they reach the servers in the same instant
 * instead of trickling in one after another.
 */
async function fireAll(cluster: Cluster, requests: BookingRequest[]): Promise<Outcome[]> {
  const serverFor = (index: number) => index % cluster.servers.length;
  const warmUps = await Promise.all(
    requests.map((_, index) =>
      call(cluster.servers[serverFor(index)]!, cluster.key, 'GET', '/resources?limit=1'),
    ),
  );
  expect(warmUps.filter((reply) => reply.status !== 200)).toEqual([]);

  const release = gate();
  const allWaiting = countdown(requests.length);
  const pending = requests.map(async (request, index) => {
    const server = serverFor(index);
    const response = await fetch(`${cluster.servers[server]!.url}/bookings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${cluster.key}`, 'content-type': 'application/json' },
      body: heldBody(JSON.stringify(request), release, () => allWaiting.arrive(index)),
      duplex: 'half',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const outcome: Outcome = { request, server, ...(await readReply(response)) };
    return outcome;
  });
  const all = Promise.all(pending);
  all.catch(() => undefined); // Awaited below; a failure before the release must not go unhandled.
  // Every request is on its connection, waiting for its body; one failing before that ends the wait.
  await Promise.race([allWaiting.opened, all]);
  release.open();
  return all;
}

type OverlapCounts = { bookingResources: number; bookings: number; examples: unknown[] };

/** Pairs of confirmed bookings of one resource whose times overlap, counted in both tables. */
async function countOverlaps(database: ClonedDatabase): Promise<OverlapCounts> {
  const client = await database.connect();
  try {
    const fromBookingResources = await client.query<{ a: string; b: string; resource_id: string }>(`
      select a.booking_id as a, b.booking_id as b, a.resource_id
      from booking_resources a
      join booking_resources b
        on a.resource_id = b.resource_id and a.booking_id < b.booking_id and a.during && b.during
      where a.status = 'confirmed' and b.status = 'confirmed'`);
    const fromBookings = await client.query<{ n: number }>(`
      select count(*)::int as n
      from bookings a
      join bookings b
        on a.booking_id < b.booking_id
       and a.resource_ids && b.resource_ids
       and tstzrange(a.start_time, a.end_time) && tstzrange(b.start_time, b.end_time)
      where a.status = 'confirmed' and b.status = 'confirmed'`);
    return {
      bookingResources: fromBookingResources.rowCount ?? 0,
      bookings: fromBookings.rows[0]!.n,
      examples: fromBookingResources.rows.slice(0, 3),
    };
  } finally {
    await client.end();
  }
}

function randomInt(max: number): number {
  return Math.floor(Math.random() * max);
}

function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

/** The first few odd answers, with the servers' logged errors (pino JSON lines on stdout). */
function describeUnexpected(cluster: Cluster, outcomes: Outcome[]): string {
  const answers = JSON.stringify(
    outcomes
      .slice(0, 5)
      .map((o) => ({ server: o.server, status: o.status, body: o.body, request: o.request })),
    null,
    2,
  );
  const errors = cluster.servers
    .flatMap((server) => server.stdout().split('\n'))
    .filter((line) => /"level":(50|60)\b/.test(line))
    .slice(0, 5)
    .join('\n');
  return `${outcomes.length} in all; the first:\n${answers}\nerrors the servers logged:\n${errors}`;
}

describe.skipIf(skipReason)(
  `two server processes on real PostgreSQL${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  { timeout: 60_000 },
  () => {
    describe('with the exclusion constraint', () => {
      let cluster: Cluster | undefined;
      let resourceIds: string[] = [];

      beforeAll(async () => {
        cluster = await startCluster('dbl');
        resourceIds = [
          await createResource(cluster, 'Room A', true),
          await createResource(cluster, 'Room B', true),
          await createResource(cluster, 'Room C', false),
        ];
      }, 90_000);

      afterAll(() => stopCluster(cluster), 30_000);

      it('400 simultaneous overlapping bookings never leave two confirmed bookings of a resource overlapping, every 201 is stored and nothing is a 5xx', async () => {
        const base = baseTime();
        const requests: BookingRequest[] = Array.from({ length: 400 }, (_, i) => {
          // Starts on a 5-minute grid within eight hours, 30 to 60 minutes long: heavy overlap.
          const start = base + randomInt(96) * 5 * MINUTE;
          const end = start + (30 + randomInt(7) * 5) * MINUTE;
          // Every fourth request books two or three resources, in a random order.
          const multi = i % 4 === 0;
          const ids = multi ? shuffled(resourceIds).slice(0, 2 + randomInt(2)) : [resourceIds[randomInt(3)]!];
          // Room C has the default (weekday office hours) schedule, so it is booked past the checks only.
          const ignore = ids.includes(resourceIds[2]!) || i % 2 === 0;
          return {
            resource_ids: ids,
            start_time: iso(start),
            end_time: iso(end),
            title: `load ${i}`,
            ...(ignore ? { ignore_availability: true } : {}),
          };
        });

        const outcomes = await fireAll(cluster!, requests);

        const unexpected = outcomes.filter((o) => o.status !== 201 && o.status !== 409);
        expect(
          unexpected.length,
          `answers other than 201/409:\n${describeUnexpected(cluster!, unexpected)}`,
        ).toBe(0);
        const conflicts = outcomes.filter((o) => o.status === 409);
        const wrongConflicts = conflicts.filter((o) => o.body?.code !== 'SLOT_UNAVAILABLE');
        expect(
          wrongConflicts.length,
          `409s without SLOT_UNAVAILABLE:\n${describeUnexpected(cluster!, wrongConflicts)}`,
        ).toBe(0);
        const created = outcomes.filter((o) => o.status === 201);
        // The run exercised contention: some won, many lost, and both servers turned requests away.
        // (Which server wins the few free slots is left to chance, so that is not asserted.)
        expect(created.length).toBeGreaterThan(0);
        expect(conflicts.length).toBeGreaterThan(0);
        expect(new Set(conflicts.map((o) => o.server)).size).toBe(2);

        const client = await cluster!.database.connect();
        try {
          const stored = await client.query<{
            booking_id: string;
            status: string;
            start_time: Date;
            end_time: Date;
            resource_ids: string[];
          }>(`select booking_id, status, start_time, end_time, resource_ids from bookings`);
          const byId = new Map(stored.rows.map((row) => [row.booking_id, row]));
          for (const outcome of created) {
            const row = byId.get(outcome.body.booking_id);
            expect(row, `booking ${outcome.body.booking_id} answered 201 but is not stored`).toBeDefined();
            expect(row!.status).toBe('confirmed');
            expect(row!.start_time.getTime()).toBe(Date.parse(outcome.request.start_time));
            expect(row!.end_time.getTime()).toBe(Date.parse(outcome.request.end_time));
            expect([...row!.resource_ids].sort()).toEqual([...outcome.request.resource_ids].sort());
          }
          // And nothing else was stored: no refused request left a booking behind.
          expect(stored.rows.length).toBe(created.length);
          const rows = await client.query<{ n: number }>(
            `select count(*)::int as n from booking_resources where status = 'confirmed'`,
          );
          expect(rows.rows[0]!.n).toBe(created.reduce((sum, o) => sum + o.request.resource_ids.length, 0));
        } finally {
          await client.end();
        }

        const overlaps = await countOverlaps(cluster!.database);
        expect(overlaps, 'overlapping confirmed bookings').toMatchObject({
          bookingResources: 0,
          bookings: 0,
        });
      });
    });

    describe('negative control: the same database without the exclusion constraint', () => {
      let cluster: Cluster | undefined;
      let resourceId = '';

      beforeAll(async () => {
        cluster = await startCluster('neg', async (database) => {
          const client = await database.connect();
          try {
            await client.query('alter table booking_resources drop constraint booking_resources_no_overlap');
          } finally {
            await client.end();
          }
        });
        resourceId = await createResource(cluster, 'Contested room', true);
      }, 90_000);

      afterAll(() => stopCluster(cluster), 30_000);

      it('the overlap query finds double bookings when only the check before the insert guards the slot', async () => {
        // One burst of 200 requests for one slot double-books in most runs; now and then (about one in
        // ten here) the first booking commits before any other request reads. A further burst on the
        // next slot, at most three in all, makes a miss practically impossible without hiding one.
        let overlaps: OverlapCounts = { bookingResources: 0, bookings: 0, examples: [] };
        const created: number[] = [];
        for (let burst = 0; burst < 3 && overlaps.bookingResources === 0; burst++) {
          const start = baseTime() + (10 + burst) * 60 * MINUTE;
          const requests: BookingRequest[] = Array.from({ length: 200 }, (_, i) => ({
            resource_ids: [resourceId],
            start_time: iso(start),
            end_time: iso(start + 30 * MINUTE),
            title: `race ${burst}.${i}`,
            ...(i % 2 === 0 ? { ignore_availability: true } : {}),
          }));

          const outcomes = await fireAll(cluster!, requests);

          const unexpected = outcomes.filter((o) => o.status !== 201 && o.status !== 409);
          expect(
            unexpected.length,
            `answers other than 201/409:\n${describeUnexpected(cluster!, unexpected)}`,
          ).toBe(0);
          created.push(outcomes.filter((o) => o.status === 201).length);
          overlaps = await countOverlaps(cluster!.database);
        }
        expect(overlaps.bookingResources, `201s per burst: ${created.join(', ')}`).toBeGreaterThan(0);
        expect(overlaps.bookings).toBeGreaterThan(0);
      });
    });
  },
);
