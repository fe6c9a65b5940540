import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { findSlots } from '../src/domain/index.js';
import { loadBookableResources, loadBookedIntervals } from '../src/services/bookable-resources.js';
import type { Actor } from '../src/services/context.js';
import type { BenchContext, BenchOutcome } from './context.js';
import { createResources, insertBookings, roundTheClock } from './fixtures.js';
import { dayAfterTomorrowUtc, log, median, seededRandom, shuffledCells, timed } from './support.js';

const RESOURCE_COUNTS = [1, 10, 50, 100] as const;
const BOOKING_COUNTS = [100, 1000, 5000] as const;
const WINDOW_DAYS = 30;
const MS_PER_DAY = 86_400_000;
const MS_PER_MINUTE = 60_000;
const SAMPLES = 7;

/** `count` bookings in distinct cells of the window, half a cell long, by a seeded shuffle. */
function spreadBookings(count: number, windowStart: number, seed: number) {
  const cellMs =
    Math.floor((WINDOW_DAYS * MS_PER_DAY) / Math.ceil(count * 1.1) / MS_PER_MINUTE) * MS_PER_MINUTE;
  const cellCount = Math.floor((WINDOW_DAYS * MS_PER_DAY) / cellMs);
  return shuffledCells(cellCount, count, seededRandom(seed)).map((cell) => ({
    start: windowStart + cell * cellMs,
    end: windowStart + cell * cellMs + cellMs / 2,
  }));
}

/**
 * How the cost of GET /availability grows with the work: 1, 10, 50 and 100 resources with 100, 1,000
 * and 5,000 bookings each in a 30-day window, each against findSlots over the same intervals in memory
 * and against a SELECT of the same rows. Warm: the busy index is filled by a first request.
 */
export async function benchAvailabilityScaling(context: BenchContext): Promise<BenchOutcome> {
  const { database, sched, schedUrl } = context;
  const problems: string[] = [];
  const details: string[] = [];
  // One set of resources; each booking count gets its own 30-day window (40 days apart).
  const windowOf = (bookings: number) => {
    const start = dayAfterTomorrowUtc() + BOOKING_COUNTS.indexOf(bookings as never) * 40 * MS_PER_DAY;
    return { start, end: start + WINDOW_DAYS * MS_PER_DAY };
  };
  const maxResources = RESOURCE_COUNTS.at(-1)!;
  const resourceIds = await createResources(sched, maxResources, () => roundTheClock('UTC'));
  const seedMs = await timed(async () => {
    for (const [index, id] of resourceIds.entries()) {
      const intervals = BOOKING_COUNTS.flatMap((bookings) =>
        spreadBookings(bookings, windowOf(bookings).start, bookings + index),
      );
      await insertBookings(database, sched.organizationId, id, intervals);
    }
    await sql`analyze`.execute(database.db);
  });
  log(`availability-scaling: seeded ${maxResources} resources in ${(seedMs / 1000).toFixed(1)} s`);
  const actor: Actor = { organizationId: sched.organizationId, label: 'bench', scopes: ['admin'] };
  const lines = [
    '| resources × bookings each | intervals | GET /availability | findSlots in memory | ratio | SELECT of the rows | ratio |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const bookings of BOOKING_COUNTS) {
    for (const resources of RESOURCE_COUNTS) {
      const ids = resourceIds.slice(0, resources);
      const window = windowOf(bookings);
      const range = { start: window.start - 2 * MS_PER_DAY, end: window.end + 2 * MS_PER_DAY };
      const url =
        `${schedUrl}/availability?resource_ids=${ids.join(',')}&start=${new Date(window.start).toISOString()}` +
        `&end=${new Date(window.end).toISOString()}&duration_minutes=30&mode=any`;
      const get = async () => {
        const response = await fetch(url, { headers: { authorization: `Bearer ${sched.key}` } });
        const body = await response.text();
        if (response.status !== 200)
          throw new Error(`GET /availability answered ${response.status}: ${body}`);
      };
      const bookable = await loadBookableResources(database.db, actor, ids);
      const select = () => loadBookedIntervals(database.db, ids, range, Date.now());
      const booked = await select();
      const inputs = bookable.map((resource) => ({
        resourceId: resource.resourceId,
        schedule: resource.schedule,
        bookings: booked.get(resource.resourceId) ?? [],
        calendarBusy: [],
      }));
      const inMemory = async () =>
        findSlots(inputs, { window, durationMinutes: 30, intervalMinutes: 30, mode: 'any', now: Date.now() });
      await get();
      const variants = { get, inMemory, select };
      const names = Object.keys(variants) as (keyof typeof variants)[];
      const times = { get: [] as number[], inMemory: [] as number[], select: [] as number[] };
      const deadline = performance.now() + 30_000;
      for (let round = 0; round < SAMPLES && performance.now() < deadline; round++) {
        for (let k = 0; k < names.length; k++) {
          const name = names[(round + k) % names.length]!;
          times[name].push(await timed(variants[name]));
        }
      }
      const [ours, limit, read] = [median(times.get), median(times.inMemory), median(times.select)];
      const rows = [...booked.values()].reduce((sum, list) => sum + list.length, 0);
      if (rows !== resources * bookings)
        problems.push(`scaling ${resources} × ${bookings}: read ${rows} rows`);
      lines.push(
        `| ${resources} × ${bookings} | ${rows} | ${ours.toFixed(1)} ms | ${limit.toFixed(1)} ms | ` +
          `${(ours / limit).toFixed(2)}× | ${read.toFixed(1)} ms | ${(ours / read).toFixed(2)}× |`,
      );
    }
  }
  details.push(
    `availability scaling (PostgreSQL, mode=any, warm index, medians of ${SAMPLES}):\n\n${lines.join('\n')}\n`,
  );
  return { rows: [], problems, details };
}
