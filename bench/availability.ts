import { performance } from 'node:perf_hooks';
import { type CompiledQuery, type KyselyPlugin, type RootOperationNode, sql } from 'kysely';
import { findSlots } from '../src/domain/index.js';
import { getAvailability } from '../src/services/availability.js';
import { BusyIndex } from '../src/services/busy-index.js';
import { loadBookableResources, loadBookedIntervals } from '../src/services/bookable-resources.js';
import type { Actor } from '../src/services/context.js';
import type { DatabaseHandle } from '../src/storage/open-database.js';
import type { BenchOutcome } from './context.js';
import {
  benchDependencies,
  createResources,
  insertBookings,
  officeHours,
  roundTheClock,
  type SchedApp,
} from './fixtures.js';
import {
  type BenchRow,
  dayAfterTomorrowUtc,
  log,
  median,
  seededRandom,
  shuffledCells,
  statementSummary,
  timed,
} from './support.js';

const RESOURCES = 50;
const BOOKINGS_PER_RESOURCE = 2000;
const WINDOW_DAYS = 30;
const DURATION_MINUTES = 30;
const MS_PER_MINUTE = 60_000;
const MS_PER_DAY = 86_400_000;
/** Bookings sit in 20-minute cells (one per cell at most), so they never overlap by construction. */
const CELL_MS = 20 * MS_PER_MINUTE;
const OFFICE_ZONES = ['Europe/Berlin', 'Europe/London', 'America/New_York', 'Europe/Paris', 'Europe/Madrid'];

/** Half the resources bookable 24/7 (UTC), half on office hours with a buffer, in zones that overlap. */
function scheduleOf(index: number) {
  return index % 2 === 0 ? roundTheClock('UTC') : officeHours(OFFICE_ZONES[index % OFFICE_ZONES.length]!);
}

/**
 * 2,000 bookings of 10 or 15 minutes per resource, spread over the 2,160 twenty-minute cells of the
 * 30-day window by a seeded shuffle: dense, fragmented busy time, the same layout every run.
 */
function bookingsOf(index: number, windowStart: number): { start: number; end: number }[] {
  const random = seededRandom(0x5eed + index);
  return shuffledCells((WINDOW_DAYS * MS_PER_DAY) / CELL_MS, BOOKINGS_PER_RESOURCE, random).map((cell) => {
    const offset = random() < 0.5 ? 0 : 5 * MS_PER_MINUTE;
    const length = (random() < 0.5 ? 10 : 15) * MS_PER_MINUTE;
    const start = windowStart + cell * CELL_MS + offset;
    return { start, end: start + length };
  });
}

/**
 * Runs one GET /availability through a throwaway app, built as the server builds it, whose Kysely shares
 * the real executor but records every query, and returns the compiled read of booked intervals: the baseline is then exactly the SQL
 * (and parameters) the endpoint sends, whatever it becomes.
 */
async function captureBookedIntervalsQuery(
  database: DatabaseHandle,
  sched: SchedApp,
  url: string,
): Promise<{ query: CompiledQuery; all: CompiledQuery[] }> {
  const nodes: RootOperationNode[] = [];
  const recorder: KyselyPlugin = {
    transformQuery: (args) => {
      nodes.push(args.node);
      return args.node;
    },
    transformResult: async (args) => args.result,
  };
  const deps = await benchDependencies({ ...database, db: database.db.withPlugin(recorder) });
  try {
    const app = await deps.buildApp();
    try {
      const response = await app.inject({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${sched.key}` },
      });
      if (response.statusCode !== 200) {
        throw new Error(`GET ${url.slice(0, 80)}... answered ${response.statusCode}: ${response.body}`);
      }
    } finally {
      await app.close();
    }
  } finally {
    await deps.close();
  }
  const executor = database.db.getExecutor();
  const all = nodes.map((node) => executor.compileQuery(node, { queryId: 'bench-capture' }));
  const reads = all.filter((query) => /\bfrom\s+"?booking_resources"?/i.test(query.sql));
  if (reads.length !== 1) {
    throw new Error(
      `expected GET /availability to read booking_resources once, saw ${reads.length} such queries among:\n` +
        all.map((query) => `  ${query.sql}`).join('\n'),
    );
  }
  return { query: reads[0]!, all };
}

export type AvailabilitySuite = {
  label: string;
  database: DatabaseHandle;
  sched: SchedApp;
  /** Where sched.app listens. */
  baseUrl: string;
  samples: number;
};

/** Seeds 50 × 2,000 bookings and times the endpoint (mode=all and mode=any) against the bare read. */
export async function benchAvailability(suite: AvailabilitySuite): Promise<BenchOutcome> {
  const { label, database, sched, baseUrl, samples } = suite;
  const problems: string[] = [];
  const details: string[] = [];
  log(`availability (${label}): seeding ${RESOURCES} resources × ${BOOKINGS_PER_RESOURCE} bookings`);
  const windowStart = dayAfterTomorrowUtc();
  const windowEnd = windowStart + WINDOW_DAYS * MS_PER_DAY;
  const resourceIds = await createResources(sched, RESOURCES, scheduleOf);
  const seedMs = await timed(async () => {
    for (const [index, resourceId] of resourceIds.entries()) {
      await insertBookings(database, sched.organizationId, resourceId, bookingsOf(index, windowStart));
    }
    await sql`analyze`.execute(database.db);
  });
  log(`availability (${label}): seeded in ${(seedMs / 1000).toFixed(1)} s`);

  const query = (mode: 'all' | 'any') =>
    `/availability?resource_ids=${resourceIds.join(',')}` +
    `&start=${new Date(windowStart).toISOString()}&end=${new Date(windowEnd).toISOString()}` +
    `&duration_minutes=${DURATION_MINUTES}&mode=${mode}`;
  const captured = await captureBookedIntervalsQuery(database, sched, query('all'));
  const baselineRows = (await database.db.executeQuery(captured.query)).rows.length;
  const expectedRows = RESOURCES * BOOKINGS_PER_RESOURCE;
  if (baselineRows !== expectedRows) {
    problems.push(`${label}: the endpoint's read returned ${baselineRows} rows, expected ${expectedRows}`);
  }

  const slotCounts: Record<string, number> = {};
  const getOnce = async (mode: 'all' | 'any') => {
    const response = await fetch(baseUrl + query(mode), {
      headers: { authorization: `Bearer ${sched.key}` },
    });
    const body = await response.text();
    if (response.status !== 200) throw new Error(`GET /availability answered ${response.status}: ${body}`);
    return body;
  };
  for (const mode of ['all', 'any'] as const) {
    const body = JSON.parse(await getOnce(mode)) as { slots: unknown[] };
    slotCounts[mode] = body.slots.length;
  }

  // The limit: the project's own findSlots over the same intervals, already in memory.
  const actor: Actor = { organizationId: sched.organizationId, label: 'bench', scopes: ['admin'] };
  const range = { start: windowStart - 2 * MS_PER_DAY, end: windowEnd + 2 * MS_PER_DAY };
  const resources = await loadBookableResources(database.db, actor, resourceIds);
  const booked = await loadBookedIntervals(database.db, resourceIds, range, Date.now());
  const inputs = resources.map((resource) => ({
    resourceId: resource.resourceId,
    schedule: resource.schedule,
    bookings: booked.get(resource.resourceId) ?? [],
    calendarBusy: [],
  }));
  const inMemory = (mode: 'all' | 'any') =>
    findSlots(inputs, {
      window: { start: windowStart, end: windowEnd },
      durationMinutes: DURATION_MINUTES,
      intervalMinutes: DURATION_MINUTES,
      mode,
      now: Date.now(),
    });
  for (const mode of ['all', 'any'] as const) {
    if (inMemory(mode).length !== slotCounts[mode]) {
      problems.push(`${label}: findSlots mode=${mode} gave other slots than the endpoint`);
    }
  }

  // Interleaved, with the order rotating, so drift of the shared machine touches every variant alike.
  const variants: Record<string, () => Promise<unknown>> = {
    select: () => database.db.executeQuery(captured.query),
    'findSlots all': async () => inMemory('all'),
    'findSlots any': async () => inMemory('any'),
    all: () => getOnce('all'),
    any: () => getOnce('any'),
  };
  const names = Object.keys(variants);
  const times: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
  const deadline = performance.now() + 180_000;
  for (let round = 0; round < samples && performance.now() < deadline; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length]!;
      times[name]!.push(await timed(variants[name]!));
    }
  }
  const selectMs = median(times.select!);
  const setting = `${RESOURCES} resources × ${BOOKINGS_PER_RESOURCE} bookings, ${WINDOW_DAYS} days`;
  const rows: BenchRow[] = (['all', 'any'] as const).flatMap((mode): BenchRow[] => [
    {
      name: `P1 GET /availability mode=${mode} vs findSlots in memory, ${label} (median ms)`,
      ours: median(times[mode]!),
      baseline: median(times[`findSlots ${mode}`]!),
      unit: 'ms',
      aimKind: 'max',
      aim: 2,
      note: `${setting}, ${slotCounts[mode]} slots; baseline = findSlots over the same intervals; ${times[mode]!.length} samples`,
    },
    {
      name: `P1b GET /availability mode=${mode} vs a SELECT of its rows, ${label} (median ms)`,
      ours: median(times[mode]!),
      baseline: selectMs,
      unit: 'ms',
      aimKind: 'max',
      aim: 0.5,
      note: `${setting}; baseline = the booking_resources read the endpoint sends when it fills its index (${baselineRows} rows)`,
    },
  ]);

  // Where the time goes: the same request taken apart, in-process, without HTTP.
  const parts: Record<string, () => Promise<unknown>> = {
    'loadBookedIntervals (read + grouping)': () =>
      loadBookedIntervals(database.db, resourceIds, range, Date.now()),
    loadBookableResources: () => loadBookableResources(database.db, actor, resourceIds),
    'findSlots mode=all': async () =>
      findSlots(inputs, {
        window: { start: windowStart, end: windowEnd },
        durationMinutes: DURATION_MINUTES,
        intervalMinutes: DURATION_MINUTES,
        mode: 'all',
        now: Date.now(),
      }),
    'findSlots mode=any': async () =>
      findSlots(inputs, {
        window: { start: windowStart, end: windowEnd },
        durationMinutes: DURATION_MINUTES,
        intervalMinutes: DURATION_MINUTES,
        mode: 'any',
        now: Date.now(),
      }),
    ...Object.fromEntries(
      (['all', 'any'] as const).map((mode) => [
        `getAvailability (the service, no HTTP) mode=${mode}`,
        () =>
          getAvailability({ db: database.db, clock: () => Date.now() }, actor, {
            resourceIds,
            window: { start: windowStart, end: windowEnd },
            durationMinutes: DURATION_MINUTES,
            mode,
            timeZone: 'UTC',
          }),
      ]),
    ),
  };
  const index = new BusyIndex({ db: database.db, listen: database.listen });
  await index.start();
  const warm = (mode: 'all' | 'any') =>
    getAvailability({ db: database.db, clock: () => Date.now(), busy: index }, actor, {
      resourceIds,
      window: { start: windowStart, end: windowEnd },
      durationMinutes: DURATION_MINUTES,
      mode,
      timeZone: 'UTC',
    });
  await warm('all');
  parts['getAvailability with a warm busy index mode=all'] = () => warm('all');
  parts['getAvailability with a warm busy index mode=any'] = () => warm('any');
  parts['busy index read alone (warm)'] = () => index.read(resources, range);
  const partSamples = Math.min(samples, 5);
  for (const [name, run] of Object.entries(parts)) {
    const partTimes: number[] = [];
    for (let i = 0; i < partSamples && performance.now() < deadline + 60_000; i++)
      partTimes.push(await timed(run));
    details.push(`${label}: ${name}: median ${median(partTimes).toFixed(1)} ms`);
  }
  await index.close();
  details.push(
    `${label}: plain read ${selectMs.toFixed(1)} ms; findSlots in memory mode=all ` +
      `${median(times['findSlots all']!).toFixed(1)} ms, mode=any ${median(times['findSlots any']!).toFixed(1)} ms; HTTP mode=all ${median(times.all!).toFixed(1)} ms, mode=any ${median(times.any!).toFixed(1)} ms`,
  );
  details.push(
    `${label}: GET /availability: ${captured.all.length} statements: ` +
      captured.all.map((query) => statementSummary(query.sql.replace(/\s+/g, ' '))).join(', '),
  );
  return { rows, problems, details };
}
