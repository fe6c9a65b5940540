import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { fairnessOrder } from '../src/services/bookings/assign.js';
import type { BenchContext, BenchOutcome } from './context.js';
import {
  createResources,
  insertBookings,
  officeHours,
  roundTheClock,
  type SchedApp,
  type ScheduleBody,
} from './fixtures.js';
import type { LoadResult, LoadTarget } from './load-protocol.js';
import { comparePair, describeCycles } from './pair.js';
import {
  dayAfterTomorrowUtc,
  log,
  median,
  recordStatements,
  seededRandom,
  shuffledCells,
  statementSummary,
  timed,
} from './support.js';

const MS_PER_MINUTE = 60_000;
const MS_PER_DAY = 86_400_000;

/** The slots page: 5 people, each with 500 bookings in the 30 days asked for. */
const SLOT_PEOPLE = 5;
const SLOT_BOOKINGS_PER_PERSON = 500;
const SLOT_WINDOW_DAYS = 30;
const SLOT_DURATION_MINUTES = 30;
/** The window asked for starts the day after tomorrow, so the page's window (from now) must reach 33 days. */
const SLOT_PAGE_WINDOW_DAYS = 35;
/** Bookings sit in distinct 20-minute cells, so they never overlap by construction. */
const CELL_MS = 20 * MS_PER_MINUTE;
const OFFICE_ZONES = ['Europe/Berlin', 'Europe/London', 'America/New_York'];

/** The bookings page: a round-robin pool; every request (of either side) gets a time of its own. */
const POOL_MEMBERS = 5;
const BOOKING_MINUTES = 10;
/** The page's window reaches a year ahead (the most a page allows): about 52,000 ten-minute slots. */
const BOOKING_PAGE_WINDOW_DAYS = 365;

/** Three people on office hours (buffer after, notice) in three zones, two bookable around the clock. */
function personSchedule(index: number): ScheduleBody {
  return index < OFFICE_ZONES.length ? officeHours(OFFICE_ZONES[index]!) : roundTheClock('UTC');
}

/** 500 bookings of 10 or 15 minutes per person in distinct cells of the window, by a seeded shuffle. */
function personBookings(index: number, windowStart: number): { start: number; end: number }[] {
  const random = seededRandom(0xb00c + index);
  const cells = (SLOT_WINDOW_DAYS * MS_PER_DAY) / CELL_MS;
  return shuffledCells(cells, SLOT_BOOKINGS_PER_PERSON, random).map((cell) => {
    const offset = random() < 0.5 ? 0 : 5 * MS_PER_MINUTE;
    const length = (random() < 0.5 ? 10 : 15) * MS_PER_MINUTE;
    const start = windowStart + cell * CELL_MS + offset;
    return { start, end: start + length };
  });
}

async function organizationSlug(sched: SchedApp): Promise<string> {
  const response = await sched.app.inject({
    method: 'GET',
    url: '/organization',
    headers: { authorization: `Bearer ${sched.key}` },
  });
  if (response.statusCode !== 200) {
    throw new Error(`GET /organization answered ${response.statusCode}: ${response.body}`);
  }
  return response.json<{ slug: string }>().slug;
}

/** A published round-robin page (assign "one") over `resourceIds`, made through the API. */
async function createRoundRobinPage(
  sched: SchedApp,
  page: { slug: string; resourceIds: string[]; durationMinutes: number; windowDays: number },
): Promise<void> {
  const response = await sched.app.inject({
    method: 'POST',
    url: '/booking-pages',
    headers: { authorization: `Bearer ${sched.key}` },
    payload: {
      slug: page.slug,
      title: 'Intro call',
      durations_minutes: [page.durationMinutes],
      resource_ids: page.resourceIds,
      assign: 'one',
      window_days: page.windowDays,
    },
  });
  if (response.statusCode !== 201) {
    throw new Error(`POST /booking-pages answered ${response.statusCode}: ${response.body}`);
  }
}

type Slot = { start_time: string; end_time: string };

/**
 * Waits until no connection to the run's database but this one is busy (running a statement or in a
 * transaction) three polls in a row. Round-robin bookings over one pool take turns on its locks, so
 * when a load run ends up to 64 of them are still queued in the server; they finish here, not in the
 * next run. Asking through the app's own pool also waits for requests queued for a connection.
 */
async function untilQuiet(context: BenchContext): Promise<number> {
  const started = performance.now();
  const deadline = started + 30_000;
  for (let calm = 0; calm < 3;) {
    const { rows } = await context.database.executeSql(
      `select count(*)::int as n from pg_stat_activity
       where datname = current_database() and pid <> pg_backend_pid() and state <> 'idle'`,
    );
    calm = (rows[0] as { n: number }).n === 0 ? calm + 1 : 0;
    if (performance.now() > deadline) throw new Error('the server was still booking 30 s after a load run');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return performance.now() - started;
}

/**
 * GET /public/{org}/{page}/slots of a 5-person round-robin page against GET /availability with the
 * same resources (mode=any), duration, interval, window and zone, on the same app (same busy index).
 */
export async function benchPublicSlots(context: BenchContext): Promise<BenchOutcome> {
  const { database, sched, schedUrl, settings } = context;
  const problems: string[] = [];
  const details: string[] = [];
  log(`public-slots: ${SLOT_PEOPLE} people × ${SLOT_BOOKINGS_PER_PERSON} bookings, ${SLOT_WINDOW_DAYS} days`);
  // The app runs on the system clock: the public window [now, now + window_days] holds the one asked for.
  const windowStart = dayAfterTomorrowUtc();
  const windowEnd = windowStart + SLOT_WINDOW_DAYS * MS_PER_DAY;
  if (windowEnd > Date.now() + SLOT_PAGE_WINDOW_DAYS * MS_PER_DAY - MS_PER_DAY) {
    throw new Error('public-slots: the page window would clip the window asked for');
  }
  const people = await createResources(sched, SLOT_PEOPLE, personSchedule);
  for (const [index, id] of people.entries()) {
    await insertBookings(database, sched.organizationId, id, personBookings(index, windowStart));
  }
  await sql`analyze`.execute(database.db);
  const pageSlug = 'bench-slots';
  await createRoundRobinPage(sched, {
    slug: pageSlug,
    resourceIds: people,
    durationMinutes: SLOT_DURATION_MINUTES,
    windowDays: SLOT_PAGE_WINDOW_DAYS,
  });
  const org = await organizationSlug(sched);
  const range =
    `start=${new Date(windowStart).toISOString()}&end=${new Date(windowEnd).toISOString()}` +
    `&duration_minutes=${SLOT_DURATION_MINUTES}&time_zone=UTC`;
  const publicPath = `/public/${org}/${pageSlug}/slots?${range}`;
  const availabilityPath =
    `/availability?resource_ids=${people.join(',')}&${range}` +
    `&interval_minutes=${SLOT_DURATION_MINUTES}&mode=any`;

  const getOnce = async (path: string, headers: Record<string, string>) => {
    const response = await fetch(schedUrl + path, { headers });
    const body = await response.text();
    if (response.status !== 200) {
      throw new Error(`GET ${path.slice(0, 60)}... answered ${response.status}: ${body.slice(0, 300)}`);
    }
    return body;
  };
  const variants: Record<'public' | 'availability', () => Promise<string>> = {
    public: () => getOnce(publicPath, {}),
    availability: () => getOnce(availabilityPath, { authorization: `Bearer ${sched.key}` }),
  };
  // The same slots on both sides, or the comparison means nothing.
  const slotsOf = async (name: keyof typeof variants) =>
    (JSON.parse(await variants[name]()) as { slots: Slot[] }).slots.map(
      (slot) => `${slot.start_time}/${slot.end_time}`,
    );
  const publicSlots = await slotsOf('public');
  const availabilitySlots = await slotsOf('availability');
  if (publicSlots.length !== availabilitySlots.length) {
    problems.push(
      `public-slots: the page offered ${publicSlots.length} slots, GET /availability ${availabilitySlots.length}`,
    );
  } else if (publicSlots.join() !== availabilitySlots.join()) {
    problems.push('public-slots: the page offered other slots than GET /availability');
  }
  if (publicSlots.length === 0) problems.push('public-slots: no slots at all');

  const statements: string[] = [];
  for (const name of ['public', 'availability'] as const) {
    const sent = await recordStatements(variants[name]);
    statements.push(`${name}: ${sent.length} statements: ${sent.map(statementSummary).join(', ')}`);
  }

  // Interleaved A/B with the order alternating, so drift of the shared machine touches both alike.
  const names = Object.keys(variants) as (keyof typeof variants)[];
  const times: Record<string, number[]> = { public: [], availability: [] };
  const rounds = settings.samples * 3;
  const deadline = performance.now() + 120_000;
  for (let round = 0; round < rounds && performance.now() < deadline; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length]!;
      times[name]!.push(await timed(variants[name]));
    }
  }
  const ours = median(times.public!);
  const baseline = median(times.availability!);
  details.push(`public slots: ${statements.join('; ')}`);
  return {
    rows: [
      {
        name: 'GET /public/{org}/{page}/slots vs GET /availability mode=any, PostgreSQL (median ms)',
        ours,
        baseline,
        unit: 'ms',
        aimKind: 'max',
        aim: 1.2,
        note:
          `round-robin page of ${SLOT_PEOPLE} people × ${SLOT_BOOKINGS_PER_PERSON} bookings, ${SLOT_WINDOW_DAYS} days, ` +
          `${publicSlots.length} slots both sides; busy index warm; ${times.public!.length} samples each, interleaved`,
      },
    ],
    problems,
    details,
  };
}

/**
 * POST /public/{org}/{page}/bookings of a round-robin page against POST /bookings with assign "one"
 * over the same pool, on the same app, at the same concurrency as the bookings row.
 */
export async function benchPublicBookings(context: BenchContext): Promise<BenchOutcome> {
  const { sched, settings } = context;
  log(`public-bookings: a ${POOL_MEMBERS}-member round-robin page, ${settings.connections} connections`);
  const pool = await createResources(sched, POOL_MEMBERS, () => roundTheClock('UTC'));
  const pageSlug = 'bench-bookings';
  await createRoundRobinPage(sched, {
    slug: pageSlug,
    resourceIds: pool,
    durationMinutes: BOOKING_MINUTES,
    windowDays: BOOKING_PAGE_WINDOW_DAYS,
  });
  const org = await organizationSlug(sched);
  const publicPath = `/public/${org}/${pageSlug}/bookings`;
  const slotMs = BOOKING_MINUTES * MS_PER_MINUTE;
  // One sequence of times for both sides: no request of either ever asks for a time already taken.
  const firstSlotMs = dayAfterTomorrowUtc();
  const capacity = Math.floor(
    (Date.now() + BOOKING_PAGE_WINDOW_DAYS * MS_PER_DAY - MS_PER_DAY - firstSlotMs) / slotMs,
  );
  let nextIndex = 0;
  const problems: string[] = [];
  const after = (result: LoadResult) => {
    nextIndex = Math.max(nextIndex, result.nextIndex);
  };
  const auth = { authorization: `Bearer ${sched.key}` };
  const target = (side: 'public' | 'assign-one'): LoadTarget => ({
    kind: 'pool-bookings',
    path: side === 'public' ? publicPath : '/bookings',
    ...(side === 'public' ? {} : { headers: auth }),
    body: side === 'public' ? { kind: 'public' } : { kind: 'assign-one', resourceIds: pool },
    firstSlotMs,
    slotMs,
    firstIndex: nextIndex,
  });

  // One request of each, alone, to list the statements it costs.
  const details: string[] = [];
  for (const side of ['public', 'assign-one'] as const) {
    const n = nextIndex++;
    const start = firstSlotMs + n * slotMs;
    const attendee = { name: `Guest ${n}`, email: `guest${n}@example.com` };
    let status = 0;
    const statements = await recordStatements(async () => {
      const response = await sched.app.inject(
        side === 'public'
          ? {
              method: 'POST',
              url: publicPath,
              payload: {
                start_time: new Date(start).toISOString(),
                duration_minutes: BOOKING_MINUTES,
                attendee: { ...attendee, time_zone: 'Europe/Paris' },
              },
            }
          : {
              method: 'POST',
              url: '/bookings',
              headers: auth,
              payload: {
                resource_ids: pool,
                assign: 'one',
                start_time: new Date(start).toISOString(),
                end_time: new Date(start + slotMs).toISOString(),
                title: `Intro call: ${attendee.name}`,
                attendees: [attendee],
              },
            },
      );
      status = response.statusCode;
    });
    if (status !== 201) problems.push(`public-bookings: a single ${side} booking answered ${status}`);
    details.push(
      `${side === 'public' ? 'POST /public/{org}/{page}/bookings' : 'POST /bookings assign=one'}: ` +
        `${statements.length} statements: ${statements.map(statementSummary).join(', ')}`,
    );
  }

  const settleMs: number[] = [];
  const settle = async () => {
    settleMs.push(await untilQuiet(context));
  };
  const figures = await comparePair(
    context.load,
    settings,
    {
      ours: { label: 'public', url: context.schedUrl, target: () => target('public'), after, settle },
      baseline: {
        label: 'assign-one',
        url: context.schedUrl,
        target: () => target('assign-one'),
        after,
        settle,
      },
    },
    201,
  );
  await settle();
  // Round-robin bookings take their pool's locks before choosing a member; the choice (the fairness
  // order) reads every booking the pool ever had, so its cost grows with the pool's history.
  const fairnessMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    fairnessMs.push(await timed(() => fairnessOrder(context.database.db, pool, Date.now())));
  }
  details.push(
    `round-robin choice (fairnessOrder, under the pool's locks) after the run, ${nextIndex} bookings on the pool: ` +
      `median ${median(fairnessMs).toFixed(1)} ms`,
  );
  details.push(
    `public bookings: after a load run the server went on booking for a median ${median(settleMs.slice(1)).toFixed(0)} ms ` +
      '(requests queued on the pool when the run ended), waited out before the next run',
  );
  if (nextIndex > capacity) {
    problems.push(
      `public-bookings: ${nextIndex} times used, more than the page's window holds (${capacity})`,
    );
  }
  return {
    rows: [
      {
        name: `POST /public/{org}/{page}/bookings vs POST /bookings assign=one, PostgreSQL, ${settings.connections} clients (201/s)`,
        ours: figures.ours.rate,
        baseline: figures.baseline.rate,
        unit: 'req/s',
        ratio: figures.ratio,
        aimKind: 'min',
        aim: 0.8,
        note:
          `one ${POOL_MEMBERS}-member pool both sides, ${BOOKING_MINUTES}-minute bookings at times of their own; ` +
          `median latency ${figures.ours.medianLatencyMs.toFixed(1)} ms vs ${figures.baseline.medianLatencyMs.toFixed(1)} ms; ` +
          `server CPU per booking ${figures.ours.cpuMsPerResponse.toFixed(2)} ms vs ${figures.baseline.cpuMsPerResponse.toFixed(2)} ms; ` +
          `${describeCycles(figures)}; ${nextIndex} times used`,
      },
    ],
    problems: [...problems, ...figures.problems],
    details,
  };
}
