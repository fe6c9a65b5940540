import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { loadConfig } from '../src/config.js';
import { createDependencies, type Dependencies, type DependencyOverrides } from '../src/dependencies.js';
import type { App } from '../src/http/build-app.js';
import { SecretBox } from '../src/security/secret-box.js';
import { createBootstrapKey } from '../src/services/api-keys.js';
import type { Clock } from '../src/services/context.js';
import type { DatabaseHandle } from '../src/storage/open-database.js';

export type BenchDependencyOptions = {
  /** More environment, as an operator would set it (SCHED_PUBLIC_URL, the emulators' SCHED_GOOGLE_*, ...). */
  env?: Record<string, string>;
  /** Left out, the system clock. */
  clock?: Clock;
  /** Wraps the built connectors, e.g. to time each provider call. */
  instrumentConnectors?: DependencyOverrides['instrumentConnectors'];
};

/**
 * Sched's dependencies as `sched serve` and `sched worker` build them (createDependencies), from an
 * environment read by loadConfig: logging off, outbound HTTP allowed to loopback only, CalDAV and ICS
 * offered, the public rate limit at its maximum, unless `env` says otherwise. On the bench's own database, which its owner closes; the caller
 * closes what this opens with `close()`.
 */
export async function benchDependencies(
  database: DatabaseHandle,
  options: BenchDependencyOptions = {},
): Promise<Dependencies> {
  const config = loadConfig({
    LOG_LEVEL: 'silent',
    SCHED_OUTBOUND_ALLOW: '127.0.0.1/32',
    SCHED_CALENDAR_PROVIDERS: 'caldav,ics',
    // Every load comes from 127.0.0.1: the per-address limit of /public/* (still counted) never refuses it.
    SCHED_PUBLIC_RATE_LIMIT: '1000000',
    ...options.env,
  });
  return createDependencies(config, {
    database,
    secretBox: new SecretBox(randomBytes(32)),
    processMetrics: false,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.instrumentConnectors ? { instrumentConnectors: options.instrumentConnectors } : {}),
  });
}

export type SchedApp = {
  app: App;
  /** What the app was built from, for the benchmarks' own workers and services. */
  deps: Dependencies;
  key: string;
  organizationId: string;
  /** Closes the app, then what its dependencies opened (not the database). */
  close(): Promise<void>;
};

/** The real app as the server builds it, logging off, on the system clock; with an admin key. */
export async function startSchedApp(database: DatabaseHandle): Promise<SchedApp> {
  const admin = await createBootstrapKey(database.db, { organization: 'bench', scopes: ['admin'] });
  const deps = await benchDependencies(database);
  let app: App;
  try {
    app = await deps.buildApp();
  } catch (error) {
    await deps.close();
    throw error;
  }
  return {
    app,
    deps,
    key: admin.key,
    organizationId: admin.organizationId,
    close: async () => {
      try {
        await app.close();
      } finally {
        await deps.close();
      }
    },
  };
}

export type ScheduleBody = {
  time_zone: string;
  weekly: Record<string, [string, string][]>;
  buffer_before_minutes?: number;
  buffer_after_minutes?: number;
  minimum_notice_minutes?: number;
  booking_horizon_days?: number;
};

const ALL_DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

export function roundTheClock(timeZone = 'UTC'): ScheduleBody {
  return {
    time_zone: timeZone,
    weekly: Object.fromEntries(ALL_DAYS.map((day) => [day, [['00:00', '24:00']]])),
    buffer_before_minutes: 0,
    buffer_after_minutes: 0,
    minimum_notice_minutes: 0,
    booking_horizon_days: 3650,
  };
}

export function officeHours(timeZone: string): ScheduleBody {
  const hours: [string, string][] = [
    ['08:00', '12:30'],
    ['13:30', '19:00'],
  ];
  return {
    time_zone: timeZone,
    weekly: Object.fromEntries(ALL_DAYS.slice(0, 5).map((day) => [day, hours])),
    buffer_before_minutes: 0,
    buffer_after_minutes: 5,
    minimum_notice_minutes: 60,
    booking_horizon_days: 365,
  };
}

/** Resources and their schedules go through the API (validated as a user's would be). */
export async function createResources(
  sched: SchedApp,
  count: number,
  scheduleOf: (index: number) => ScheduleBody,
): Promise<string[]> {
  const headers = { authorization: `Bearer ${sched.key}` };
  const ids: string[] = [];
  for (let index = 0; index < count; index++) {
    const schedule = scheduleOf(index);
    const created = await sched.app.inject({
      method: 'POST',
      url: '/resources',
      headers,
      payload: { name: `bench resource ${index}`, kind: 'room', time_zone: schedule.time_zone },
    });
    if (created.statusCode !== 201) {
      throw new Error(`POST /resources answered ${created.statusCode}: ${created.body}`);
    }
    const id = created.json<{ resource_id: string }>().resource_id;
    const put = await sched.app.inject({
      method: 'PUT',
      url: `/resources/${id}/schedule`,
      headers,
      payload: schedule,
    });
    if (put.statusCode !== 200) {
      throw new Error(`PUT /resources/${id}/schedule answered ${put.statusCode}: ${put.body}`);
    }
    ids.push(id);
  }
  return ids;
}

/**
 * Confirmed bookings of one resource written straight into bookings and booking_resources in one
 * statement (the API would take minutes for 100,000). The intervals must not overlap each other.
 */
export async function insertBookings(
  database: DatabaseHandle,
  organizationId: string,
  resourceId: string,
  intervals: readonly { start: number; end: number }[],
): Promise<void> {
  const starts = intervals.map((interval) => interval.start / 1000);
  const ends = intervals.map((interval) => interval.end / 1000);
  await sql`
    with inserted as (
      insert into bookings (organization_id, status, resource_ids, start_time, end_time, title)
      select ${organizationId}::uuid, 'confirmed', array[${resourceId}::uuid],
             to_timestamp(t.s), to_timestamp(t.e), 'bench booking'
      from unnest(${starts}::float8[], ${ends}::float8[]) as t(s, e)
      returning booking_id, start_time, end_time
    )
    insert into booking_resources (booking_id, resource_id, organization_id, during, status)
    select booking_id, ${resourceId}::uuid, ${organizationId}::uuid,
           tstzrange(start_time, end_time, '[)'), 'confirmed'
    from inserted`.execute(database.db);
}

/** Titles for generated calendar events, so listings read like a real calendar. */
export const EVENT_TITLES = [
  'Team sync',
  'Dentist',
  '1:1 with Maria',
  'Project review',
  'Lunch with clients',
  'Physiotherapy',
  'Quarterly planning',
  'Yoga',
  'Parent-teacher meeting',
  'Flight to Lisbon',
];
