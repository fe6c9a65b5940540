import { BERLIN_VTIMEZONE } from '../test/support/berlin-vtimezone.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { Agent, request } from 'undici';
import { defaultSchedule, type Interval } from '../src/domain/index.js';
import { expandObject } from '../src/ical/expand-object.js';
import { CalDavProvider } from '../src/calendar/providers/caldav/caldav-provider.js';
import { multigetBody, syncCollectionBody } from '../src/calendar/providers/caldav/caldav-xml.js';
import { type Connectors, connectCalendar } from '../src/calendar/store/connections.js';
import { loadCalendarBusy } from '../src/calendar/busy.js';
import { expandForStorage, expansionWindow, fromRemote } from '../src/calendar/parsing/expand.js';
import { storeObjects } from '../src/calendar/store/events.js';
import { syncConnection, type SyncStats } from '../src/calendar/engine/sync.js';
import type { Actor } from '../src/services/context.js';
import { startCalDavServer, type CalDavServer } from '../test/support/caldav-servers.js';
import type { BenchContext, BenchOutcome } from './context.js';
import {
  describePhases,
  syncPhases,
  timedProvider,
  timeStoring,
  type SyncPhases,
  type TimedListing,
} from './sync-breakdown.js';
import { benchDependencies, createResources, EVENT_TITLES, insertBookings, officeHours } from './fixtures.js';
import { type BenchRow, dayAfterTomorrowUtc, log, median, seededRandom, timed } from './support.js';

/** Registers cleanup work with the run, so that a signal or the watchdog still undoes it. */
export type Defer = (what: string, run: () => Promise<void> | void) => void;

const MS_PER_MINUTE = 60_000;
const MS_PER_DAY = 86_400_000;

/** 20261121T093000, the wall-clock fields of `ms` read as UTC; with a Z when the time is UTC. */
function stamp(ms: number, utc: boolean): string {
  const text = new Date(ms).toISOString().replace(/[-:]/g, '').slice(0, 15);
  return utc ? `${text}Z` : text;
}

function dateOnly(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
}

/** DTSTART/DTEND-style property: in UTC, or in Europe/Berlin wall-clock time. */
function timeProperty(name: string, wallClock: number, berlin: boolean): string {
  return berlin
    ? `${name};TZID=Europe/Berlin:${stamp(wallClock, false)}`
    : `${name}:${stamp(wallClock, true)}`;
}

export type CalendarObject = { name: string; ics: string; recurring: boolean };

/**
 * One calendar as people keep them: `series` weekly recurring series (open-ended, COUNT or UNTIL;
 * 2 in 5 with an EXDATE and a moved occurrence in the same object; in UTC or Europe/Berlin with its
 * VTIMEZONE) and `singles` one-off events (a tenth all-day, some transparent or cancelled), all
 * starting within half a year either side of `today` (a UTC midnight). The same every run for a seed.
 */
export function calendarObjects(options: {
  today: number;
  series: number;
  singles: number;
  seed: number;
  /** Days either side of today over which the objects start. */
  spreadDays?: number;
}): CalendarObject[] {
  const { today, series, singles, seed } = options;
  const spread = options.spreadDays ?? 182;
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const dtstamp = `DTSTAMP:${stamp(today - 3 * MS_PER_DAY, true)}`;
  const objects: CalendarObject[] = [];
  for (let index = 0; index < series + singles; index++) {
    const recurring = index < series;
    const uid = `${recurring ? 'series' : 'event'}-${seed}-${index}@calendar.example`;
    const name = `${recurring ? 'series' : 'event'}-${seed}-${index}`;
    const day = today + Math.floor((random() * 2 - 1) * spread) * MS_PER_DAY;
    const start = day + (7 * 60 + Math.floor(random() * 22) * 30) * MS_PER_MINUTE;
    const minutes = pick([30, 45, 60, 60, 90]);
    const end = start + minutes * MS_PER_MINUTE;
    const kind = index % 5;
    const berlin = recurring ? kind !== 2 && kind !== 3 : index % 3 === 0;
    const allDay = !recurring && index % 10 === 5;
    const common = [
      `UID:${uid}`,
      dtstamp,
      `LAST-MODIFIED:${stamp(today - 10 * MS_PER_DAY, true)}`,
      'SEQUENCE:0',
      `SUMMARY:${pick(EVENT_TITLES)}`,
      random() < 0.5 ? `LOCATION:Room ${1 + Math.floor(random() * 40)}` : 'LOCATION:Online',
      `DESCRIPTION:Agenda and notes for ${name}\\, written by the organiser.`,
    ];
    const master = ['BEGIN:VEVENT', ...common];
    const overrides: string[] = [];
    if (allDay) {
      master.push(
        `DTSTART;VALUE=DATE:${dateOnly(day)}`,
        `DTEND;VALUE=DATE:${dateOnly(day + MS_PER_DAY)}`,
        'TRANSP:TRANSPARENT',
      );
    } else {
      master.push(timeProperty('DTSTART', start, berlin), timeProperty('DTEND', end, berlin));
      if (!recurring && index % 17 === 0) master.push('TRANSP:TRANSPARENT');
      if (!recurring && index % 29 === 0) master.push('STATUS:CANCELLED');
    }
    if (recurring) {
      const rule = [
        'RRULE:FREQ=WEEKLY',
        'RRULE:FREQ=WEEKLY;COUNT=40',
        `RRULE:FREQ=WEEKLY;UNTIL=${stamp(start + 200 * MS_PER_DAY, true)}`,
        'RRULE:FREQ=WEEKLY;INTERVAL=2',
        `RRULE:FREQ=WEEKLY;UNTIL=${stamp(start + 300 * MS_PER_DAY, true)}`,
      ][kind]!;
      master.push(rule);
      if (kind === 0 || kind === 2) {
        const skipped = start + 7 * MS_PER_DAY;
        const moved = start + 14 * MS_PER_DAY;
        master.push(timeProperty('EXDATE', skipped, berlin));
        overrides.push(
          'BEGIN:VEVENT',
          ...common.map((line) => (line === 'SEQUENCE:0' ? 'SEQUENCE:1' : line)),
          timeProperty('RECURRENCE-ID', moved, berlin),
          timeProperty('DTSTART', moved + 2 * 60 * MS_PER_MINUTE, berlin),
          timeProperty('DTEND', moved + 2 * 60 * MS_PER_MINUTE + minutes * MS_PER_MINUTE, berlin),
          'END:VEVENT',
        );
      }
    }
    if (index % 4 === 0) {
      master.push(
        'ORGANIZER;CN=Maria Lopez:mailto:maria@example.org',
        'ATTENDEE;CN=Sam Doe;PARTSTAT=ACCEPTED:mailto:sam@example.org',
      );
    }
    master.push('END:VEVENT');
    const usesBerlin = berlin && !allDay;
    const lines = [
      'BEGIN:VCALENDAR',
      'VERSION:2.0',
      'PRODID:-//Example Corp//Calendar 4.2//EN',
      ...(usesBerlin ? BERLIN_VTIMEZONE : []),
      ...master,
      ...overrides,
      'END:VCALENDAR',
      '',
    ];
    objects.push({ name, ics: lines.join('\r\n'), recurring });
  }
  return objects;
}

const SYNC_SERIES = 500;
const SYNC_SINGLES = 4500;
const SYNC_OBJECTS = SYNC_SERIES + SYNC_SINGLES;
/** The performance issue's aim for the first sync: at least two thirds of the bare REPORTs' rate. */
const SYNC_AIM = 0.67;
/** CalDavProvider's default hrefs per calendar-multiget; the connector does not change it. */
const MULTIGET_BATCH = 100;

type Radicale = { server: CalDavServer; calendarUrl: string; folder: string };

/**
 * Radicale through the tests' launcher, with its storage on tmpfs when there is one: Radicale fsyncs
 * every item and cache file it writes, one at a time under a lock, which on this disk makes building
 * its cache for 5,000 items take over a minute. Reads are served from memory either way.
 */
async function startRadicale(defer: Defer): Promise<Radicale> {
  const parent = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const home = fs.mkdtempSync(path.join(parent, 'sched-bench-radicale-'));
  defer(`remove ${home}`, () => fs.rmSync(home, { recursive: true, force: true }));
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = home;
  // The launcher reads os.tmpdir() before its first await, so TMPDIR is only needed for this call.
  const starting = startCalDavServer('radicale');
  if (previous === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = previous;
  const server = await starting;
  defer('stop Radicale', () => server.stop());
  const calendarUrl = await server.newCalendar('bench-events');
  const [serverDir] = fs.readdirSync(home).filter((name) => name.startsWith('sched-radicale-'));
  const folder = path.join(
    home,
    serverDir ?? '',
    'collections',
    'collection-root',
    server.username,
    'bench-events',
  );
  if (!serverDir || !fs.existsSync(path.join(folder, '.Radicale.props'))) {
    throw new Error(`cannot find the storage folder of ${calendarUrl} under ${home}`);
  }
  return { server, calendarUrl, folder };
}

/**
 * What a minimal client sends to fetch the whole calendar, with the provider's own request bodies:
 * sync-collection with an empty token, then calendar-multiget in the provider's batch size, one after
 * the other. Bodies are read as text; only the hrefs are picked out of the listing.
 */
async function bareFetch(
  agent: Agent,
  calendarUrl: string,
  authorization: string,
): Promise<{ objects: number; bytes: number }> {
  const headers = { authorization, depth: '1', 'content-type': 'application/xml; charset=utf-8' };
  const listing = await request(calendarUrl, {
    method: 'REPORT',
    headers,
    body: syncCollectionBody(null),
    dispatcher: agent,
  });
  const text = await listing.body.text();
  if (listing.statusCode !== 207) throw new Error(`sync-collection answered ${listing.statusCode}`);
  const collection = new URL(calendarUrl).pathname;
  const paths = [...text.matchAll(/<(?:\w+:)?href>([^<]+)<\/(?:\w+:)?href>/g)]
    .map((match) => match[1]!)
    .filter((href) => href !== collection && !href.endsWith('/'));
  let objects = 0;
  let bytes = text.length;
  for (let at = 0; at < paths.length; at += MULTIGET_BATCH) {
    const answer = await request(calendarUrl, {
      method: 'REPORT',
      headers,
      body: multigetBody(paths.slice(at, at + MULTIGET_BATCH)),
      dispatcher: agent,
    });
    const body = await answer.body.text();
    if (answer.statusCode !== 207) throw new Error(`calendar-multiget answered ${answer.statusCode}`);
    bytes += body.length;
    for (
      let index = body.indexOf('BEGIN:VCALENDAR');
      index >= 0;
      index = body.indexOf('BEGIN:VCALENDAR', index + 1)
    ) {
      objects++;
    }
  }
  return { objects, bytes };
}

/** The connectors, with every CalDAV listing a sync reads timed (bench/sync-breakdown.ts). */
function timedConnectors(connectors: Connectors, listings: TimedListing[]): Connectors {
  const caldav = connectors.caldav!;
  return {
    ...connectors,
    caldav: {
      readOnly: caldav.readOnly,
      prepare: (input) => caldav.prepare(input),
      open: (settings, credentials, openContext) =>
        timedProvider(caldav.open(settings, credentials, openContext), (listing) => listings.push(listing)),
    },
  };
}

/**
 * The first sync of a 5,000-object calendar from Radicale (`syncConnection` on a new connection: fetch,
 * parse, expand, store) against the bare REPORTs that fetch the same objects from the same server.
 */
export async function benchCalendarSync(context: BenchContext, defer: Defer): Promise<BenchOutcome> {
  const problems: string[] = [];
  const details: string[] = [];
  const { sched, database } = context;
  // Every sync runs at the same instant, so each stores exactly the occurrences counted below.
  const now = Date.now();
  const today = Math.floor(now / MS_PER_DAY) * MS_PER_DAY;
  const zone = 'Europe/Berlin';
  const objects = calendarObjects({ today, series: SYNC_SERIES, singles: SYNC_SINGLES, seed: 1 });
  const window = expansionWindow(now);
  const expected = objects.reduce((sum, object) => {
    const result = expandForStorage(object.ics, window, zone);
    return sum + (result.ok ? result.occurrences.length : 0);
  }, 0);

  const benchStarted = performance.now();
  log('calendar-sync: starting Radicale');
  const radicale = await startRadicale(defer);
  const { server, calendarUrl } = radicale;
  // 5,000 PUTs would take many minutes: on every new object Radicale reads the whole collection to
  // look for a clashing UID. Its storage is one file per object, so the files are written there, and
  // Radicale builds its cache on the first listing, which is not timed.
  const setupMs = await timed(async () => {
    for (const object of objects) {
      fs.writeFileSync(path.join(radicale.folder, `${object.name}.ics`), object.ics);
    }
  });
  const authorization = `Basic ${Buffer.from(`${server.username}:${server.password}`).toString('base64')}`;
  const agent = new Agent({ keepAliveTimeout: 30_000 });
  defer('close the bare HTTP agent', () => agent.destroy());
  let servedBytes = 0;
  const warmMs = await timed(async () => {
    const first = await bareFetch(agent, calendarUrl, authorization);
    servedBytes = first.bytes;
    if (first.objects !== SYNC_OBJECTS) {
      throw new Error(
        `Radicale served ${first.objects} of the ${SYNC_OBJECTS} objects written to its storage`,
      );
    }
  });
  log(
    `calendar-sync: ${SYNC_OBJECTS} objects written in ${(setupMs / 1000).toFixed(1)} s, ` +
      `Radicale's first listing (cache build) took ${(warmMs / 1000).toFixed(1)} s`,
  );

  const listings: TimedListing[] = [];
  // As `sched serve` builds them (outbound HTTP allowed to 127.0.0.1/32 only), with the listing timed.
  const sync = await benchDependencies(database, {
    clock: () => now,
    instrumentConnectors: (connectors) => timedConnectors(connectors, listings),
  });
  defer('close the calendar-sync dependencies', () => sync.close());
  const deps = sync.calendar;
  const [resourceId] = await createResources(sched, 1, () => officeHours(zone));
  const actor: Actor = { organizationId: sched.organizationId, label: 'bench', scopes: ['admin'] };

  const connect = async (): Promise<string> => {
    const connection = await connectCalendar(
      deps,
      actor,
      'caldav',
      {
        resource_id: resourceId!,
        url: server.rootUrl,
        username: server.username,
        password: server.password,
        calendar_id: calendarUrl,
      },
      { publicUrl: context.schedUrl },
    );
    return connection.connection_id;
  };
  const syncOnce = async (): Promise<number> => {
    const id = await connect();
    let stats: SyncStats | undefined;
    const before = listings.length;
    const started = performance.now();
    const ms = await timed(async () => {
      stats = await syncConnection(deps, id);
    });
    phases.push(syncPhases(started, ms, listings[before]));
    const counts = await sql<{ events: number; failed: number; recurring: number; occurrences: number }>`
      select (select count(*)::int from calendar_events where connection_id = ${id}) as events,
             (select count(*)::int from calendar_events where connection_id = ${id}
                and parse_error is not null) as failed,
             (select count(*)::int from calendar_events where connection_id = ${id} and recurring) as recurring,
             (select count(*)::int from calendar_occurrences where connection_id = ${id}) as occurrences`.execute(
      database.db,
    );
    const row = counts.rows[0]!;
    if (stats?.created !== SYNC_OBJECTS || row.events !== SYNC_OBJECTS || row.failed > 0) {
      problems.push(
        `calendar-sync: a first sync created ${stats?.created}, stored ${row.events} objects ` +
          `(${row.failed} unparsed), expected ${SYNC_OBJECTS}`,
      );
    }
    if (row.recurring !== SYNC_SERIES || row.occurrences !== expected) {
      problems.push(
        `calendar-sync: stored ${row.recurring} series and ${row.occurrences} occurrences; ` +
          `the objects written to Radicale hold ${SYNC_SERIES} and ${expected}`,
      );
    }
    await database.db.deleteFrom('calendar_connections').where('connection_id', '=', id).execute();
    await sql`vacuum analyze calendar_events, calendar_occurrences`.execute(database.db);
    return ms;
  };
  const bareOnce = async (): Promise<number> => {
    let fetched = { objects: 0, bytes: 0 };
    const ms = await timed(async () => {
      fetched = await bareFetch(agent, calendarUrl, authorization);
    });
    if (fetched.objects !== SYNC_OBJECTS) {
      problems.push(`calendar-sync: the bare fetch got ${fetched.objects} objects, expected ${SYNC_OBJECTS}`);
    }
    return ms;
  };

  const phases: SyncPhases[] = [];
  const times: Record<'sync' | 'bare', number[]> = { sync: [], bare: [] };
  for (const side of ['sync', 'bare', 'bare', 'sync', 'sync', 'bare'] as const) {
    const ms = side === 'sync' ? await syncOnce() : await bareOnce();
    times[side].push(ms);
    log(`calendar-sync: ${side === 'sync' ? 'first sync' : 'bare REPORTs'} ${(ms / 1000).toFixed(2)} s`);
  }

  // The parsing and expansion alone, in-process and warm, on the objects as Radicale serves them.
  const served = await new CalDavProvider({
    http: sync.http,
    collectionUrl: calendarUrl,
    username: server.username,
    password: server.password,
  }).listChanges(null, new Map());
  let parsedTwice = 0;
  const expandTimes: number[] = [];
  for (let i = 0; i < 3; i++) {
    expandTimes.push(
      await timed(async () => {
        for (const event of served.changed) fromRemote(event, window, zone);
      }),
    );
  }
  for (const event of served.changed) {
    const inWindow = expandObject(event.ics, window, { floatingZone: zone });
    if (inWindow.ok && !inWindow.summary.recurring && inWindow.occurrences.length === 0) parsedTwice++;
  }
  // Storing alone, the same objects expanded beforehand, into a connection that holds nothing yet.
  const expanded = served.changed.map((event) => fromRemote(event, window, zone));
  const storeTimes = await timeStoring(database.db, connect, expanded, now);

  log(`calendar-sync: done in ${((performance.now() - benchStarted) / 1000).toFixed(0)} s`);
  const syncMs = median(times.sync);
  const bareMs = median(times.bare);
  const expandMs = median(expandTimes);
  const storeMs = median(storeTimes);
  const seconds = (ms: number) => (ms / 1000).toFixed(2);
  const rows: BenchRow[] = [
    {
      name: `first CalDAV sync, ${SYNC_OBJECTS} objects from Radicale (events/s)`,
      ours: SYNC_OBJECTS / (syncMs / 1000),
      baseline: SYNC_OBJECTS / (bareMs / 1000),
      unit: 'events/s',
      aimKind: 'min',
      note:
        `${SYNC_SERIES} weekly series + ${SYNC_SINGLES} single events, ${expected} occurrences stored; ` +
        `syncConnection on a new connection (PostgreSQL) ${seconds(syncMs)} s vs the bare sync-collection ` +
        `+ ${Math.ceil(SYNC_OBJECTS / MULTIGET_BATCH)} calendar-multiget REPORTs ${seconds(bareMs)} s; ` +
        'medians of 3, ABBA',
      aim: SYNC_AIM,
    },
  ];
  details.push(
    `calendar-sync: syncs ${times.sync.map(seconds).join(', ')} s; bare REPORTs ${times.bare.map(seconds).join(', ')} s`,
    `calendar-sync: inside the syncs, ${describePhases(phases)}; alone, parsing and expanding the ` +
      `${served.changed.length} objects takes ${seconds(expandMs)} s warm (${parsedTwice} of them single ` +
      `events outside the stored span, on one thread) and storing them ${seconds(storeMs)} s`,
    `calendar-sync: setup: ${SYNC_OBJECTS} files written to Radicale's storage in ${(setupMs / 1000).toFixed(1)} s, ` +
      `its first listing (building its cache) ${(warmMs / 1000).toFixed(1)} s; the REPORT answers ` +
      `come to ${(servedBytes / 1e6).toFixed(1)} MB`,
  );
  return { rows, problems, details };
}

const CALENDARS = 10;
/** Busy calendars: about 300 occurrences each in the 30-day window, office hours full. */
const HEAVY = { series: 30, singles: 950 };
/** Light ones: about 30 each, so that free time is left and slots are found. */
const LIGHT = { series: 3, singles: 95 };
/** The calendars' objects start within this many days of today: two months back, two ahead. */
const CALENDAR_SPREAD_DAYS = 60;
const WINDOW_DAYS = 30;
const BOOKINGS_PER_DAY = 5;
const DURATION_MINUTES = 30;

/** Five half-hour bookings a day in the window, in distinct half hours between 07:00 and 17:00 UTC. */
function dailyBookings(windowStart: number): { start: number; end: number }[] {
  const random = seededRandom(0xca1);
  const intervals: { start: number; end: number }[] = [];
  for (let day = 0; day < WINDOW_DAYS; day++) {
    const cells = Array.from({ length: 20 }, (_, cell) => cell);
    for (let i = cells.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [cells[i], cells[j]] = [cells[j]!, cells[i]!];
    }
    for (const cell of cells.slice(0, BOOKINGS_PER_DAY).sort((a, b) => a - b)) {
      const start = windowStart + day * MS_PER_DAY + (7 * 60 + cell * 30) * MS_PER_MINUTE;
      intervals.push({ start, end: start + 30 * MS_PER_MINUTE });
    }
  }
  return intervals;
}

/**
 * Ten connected calendars stored as a sync leaves them: connection rows with the expanded span set,
 * and every object parsed, expanded and written by the sync's own storeObjects.
 */
async function seedCalendars(
  context: BenchContext,
  resourceId: string,
  now: number,
  size: { series: number; singles: number },
  seed: number,
): Promise<void> {
  const { database, sched } = context;
  const span = expansionWindow(now);
  const today = Math.floor(now / MS_PER_DAY) * MS_PER_DAY;
  for (let index = 0; index < CALENDARS; index++) {
    const calendarId = `http://127.0.0.1:5232/alice/calendar-${seed}-${index}/`;
    const connection = await database.db
      .insertInto('calendar_connections')
      .values({
        organization_id: sched.organizationId,
        resource_id: resourceId,
        provider: 'caldav',
        calendar_id: calendarId,
        direction: 'two_way',
        frequency_minutes: 15,
        realtime: false,
        conflict_policy: 'sched_wins',
        blocks_availability: true,
        settings: JSON.stringify({ collection_url: calendarId, display_name: `calendar-${index}` }),
        last_synced_at: new Date(now),
        expanded_from: new Date(span.start),
        expanded_until: new Date(span.end),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const objects = calendarObjects({ today, ...size, seed: seed + index, spreadDays: CALENDAR_SPREAD_DAYS });
    const remote = objects.map((object) => ({
      remoteId: `${new URL(calendarId).pathname}${object.name}.ics`,
      etag: `"${seed + index}-${object.name}"`,
      ics: object.ics,
    }));
    await storeObjects(
      database.db,
      connection,
      remote.map((event) => fromRemote(event, span, 'Europe/Berlin')),
      Date.now(),
    );
  }
}

type Occurrences = { total: number; blocking: number };

async function occurrencesIn(
  context: BenchContext,
  resourceId: string,
  window: Interval,
): Promise<Occurrences> {
  const result = await sql<Occurrences>`
    select count(*)::int as total, count(*) filter (where blocks)::int as blocking
    from calendar_occurrences where resource_id = ${resourceId}
      and during && tstzrange(${new Date(window.start)}, ${new Date(window.end)}, '[)')`.execute(
    context.database.db,
  );
  return result.rows[0]!;
}

/**
 * GET /availability (and POST /freebusy) for one resource with ten connected calendars against an
 * identical resource (same schedule, same bookings) with none, through the real app over HTTP.
 */
export async function benchCalendarAvailability(context: BenchContext): Promise<BenchOutcome> {
  const { sched, database, schedUrl, settings } = context;
  const problems: string[] = [];
  const details: string[] = [];
  const benchStarted = performance.now();
  const now = Date.now();
  const windowStart = dayAfterTomorrowUtc(now);
  const windowEnd = windowStart + WINDOW_DAYS * MS_PER_DAY;
  const window = { start: windowStart, end: windowEnd };
  // A horizon of ten years, so that the window past the stored span still has bookable time.
  const schedule = { ...officeHours('Europe/Berlin'), booking_horizon_days: 3650 };
  const [heavyId, lightId, noneId] = await createResources(sched, 3, () => schedule);
  if (!heavyId || !lightId || !noneId) throw new Error('calendar-availability: resources were not created');
  log(`calendar-availability: seeding 2 × ${CALENDARS} calendars`);
  const seedMs = await timed(async () => {
    const bookings = dailyBookings(windowStart);
    for (const id of [heavyId, lightId, noneId]) {
      await insertBookings(database, sched.organizationId, id, bookings);
    }
    await seedCalendars(context, heavyId, now, HEAVY, 100);
    await seedCalendars(context, lightId, now, LIGHT, 200);
    await sql`analyze`.execute(database.db);
  });
  log(`calendar-availability: seeded in ${(seedMs / 1000).toFixed(1)} s`);

  const spans = await sql<{ from_ms: number; until_ms: number; connections: number }>`
    select min(extract(epoch from expanded_from) * 1000)::float8 as from_ms,
           min(extract(epoch from expanded_until) * 1000)::float8 as until_ms, count(*)::int as connections
    from calendar_connections where resource_id in (${heavyId}, ${lightId})`.execute(database.db);
  const stored = spans.rows[0]!;
  if (
    stored.connections !== 2 * CALENDARS ||
    !(stored.from_ms <= windowStart && stored.until_ms >= windowEnd)
  ) {
    problems.push(
      `calendar-availability: the stored span does not cover the window (${JSON.stringify(stored)}); ` +
        'the figures would include expansion on demand',
    );
  }
  const heavy = await occurrencesIn(context, heavyId, window);
  const light = await occurrencesIn(context, lightId, window);
  // A window reaching 20 days past the stored span: the open-ended series are expanded on demand there.
  const farStart = Math.floor(stored.until_ms / MS_PER_DAY - 10) * MS_PER_DAY;
  const farEnd = farStart + WINDOW_DAYS * MS_PER_DAY;

  const headers = { authorization: `Bearer ${sched.key}` };
  const availability = (resourceId: string, start: number, end: number) => async () => {
    const url =
      `${schedUrl}/availability?resource_ids=${resourceId}&start=${new Date(start).toISOString()}` +
      `&end=${new Date(end).toISOString()}&duration_minutes=${DURATION_MINUTES}`;
    const response = await fetch(url, { headers });
    const body = await response.text();
    if (response.status !== 200) throw new Error(`GET /availability answered ${response.status}: ${body}`);
    return (JSON.parse(body) as { slots: unknown[] }).slots.length;
  };
  const freebusy = (resourceId: string) => async () => {
    const response = await fetch(`${schedUrl}/freebusy`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({
        resource_ids: [resourceId],
        start: new Date(windowStart).toISOString(),
        end: new Date(windowEnd).toISOString(),
      }),
    });
    const body = await response.text();
    if (response.status !== 200) throw new Error(`POST /freebusy answered ${response.status}: ${body}`);
    const parsed = JSON.parse(body) as { resources: Record<string, { busy: unknown[] }> };
    return parsed.resources[resourceId]?.busy.length ?? 0;
  };
  const perCalendar = (found: Occurrences) =>
    `${found.total} occurrences in the window (${found.blocking} blocking, ≈ ${Math.round(found.total / CALENDARS)} per calendar)`;
  // The performance issue's aims: 10 busy calendars at most 1.3 times the time without, and at most
  // twice past the stored span; the other two rows have none.
  const pairs: {
    name: string;
    with: () => Promise<number>;
    without: () => Promise<number>;
    counted: string;
    data: string;
    aim?: number;
  }[] = [
    {
      name: `GET /availability 30 days, ${CALENDARS} busy calendars vs none (median ms)`,
      with: availability(heavyId, windowStart, windowEnd),
      without: availability(noneId, windowStart, windowEnd),
      counted: 'slots',
      data: perCalendar(heavy),
      aim: 1.3,
    },
    {
      name: `GET /availability 30 days, ${CALENDARS} light calendars vs none (median ms)`,
      with: availability(lightId, windowStart, windowEnd),
      without: availability(noneId, windowStart, windowEnd),
      counted: 'slots',
      data: perCalendar(light),
    },
    {
      name: `POST /freebusy 30 days, ${CALENDARS} busy calendars vs none (median ms)`,
      with: freebusy(heavyId),
      without: freebusy(noneId),
      counted: 'busy blocks',
      data: perCalendar(heavy),
    },
    {
      name: `GET /availability 30 days past the stored span, ${CALENDARS} busy calendars (median ms)`,
      with: availability(heavyId, farStart, farEnd),
      without: availability(noneId, farStart, farEnd),
      counted: 'slots',
      data: `from ${new Date(farStart).toISOString().slice(0, 10)}, 10 days before the stored span ends: series expanded on demand`,
      aim: 2,
    },
  ];
  const counts: { with: number; without: number }[] = [];
  for (const pair of pairs) counts.push({ with: await pair.with(), without: await pair.without() });
  const times = pairs.map(() => ({ with: [] as number[], without: [] as number[] }));
  // Requests of 5-20 ms swing by more than the difference measured, so they get three times the rounds.
  const rounds = settings.samples * 3;
  for (let round = 0; round < rounds; round++) {
    for (const [index, pair] of pairs.entries()) {
      const order = round % 2 === 0 ? (['with', 'without'] as const) : (['without', 'with'] as const);
      for (const side of order) times[index]![side].push(await timed(pair[side]));
    }
  }
  const rows: BenchRow[] = pairs.map((pair, index) => {
    const count = counts[index]!;
    return {
      name: pair.name,
      ours: median(times[index]!.with),
      baseline: median(times[index]!.without),
      unit: 'ms',
      aimKind: 'max',
      ...(pair.aim === undefined ? {} : { aim: pair.aim }),
      note:
        `${pair.data}; ${count.with} ${pair.counted} with the calendars, ${count.without} without; ` +
        `${rounds} samples each, alternating${pair.aim === undefined ? '; no aim set' : ''}`,
    };
  });

  const readRange = { start: windowStart - 2 * MS_PER_DAY, end: windowEnd + 2 * MS_PER_DAY };
  const farRange = { start: farStart - 2 * MS_PER_DAY, end: farEnd + 2 * MS_PER_DAY };
  const busyTimes: number[] = [];
  const farTimes: number[] = [];
  // What the services pass: the resource with its flag that connected calendars can make it busy.
  const heavyResource = [
    { resourceId: heavyId, timeZone: 'UTC', schedule: defaultSchedule('UTC'), hasBlockingCalendars: true },
  ];
  for (let i = 0; i < 5; i++) {
    busyTimes.push(await timed(() => loadCalendarBusy(database.db, heavyResource, readRange)));
    farTimes.push(await timed(() => loadCalendarBusy(database.db, heavyResource, farRange)));
  }
  const farBusy = (await loadCalendarBusy(database.db, heavyResource, farRange)).get(heavyId)?.length ?? 0;
  log(`calendar-availability: done in ${((performance.now() - benchStarted) / 1000).toFixed(0)} s`);
  details.push(
    `calendar-availability: 10 busy calendars (${HEAVY.series} weekly series + ${HEAVY.singles} single events each) ` +
      `and 10 light ones (${LIGHT.series} + ${LIGHT.singles}) stored in ${(seedMs / 1000).toFixed(1)} s`,
    `calendar-availability: loadCalendarBusy (the service, no HTTP), 10 busy calendars: in the stored span ` +
      `${median(busyTimes).toFixed(1)} ms; past it ${median(farTimes).toFixed(1)} ms (${farBusy} intervals, ` +
      'nearly all expanded on demand)',
  );
  return { rows, problems, details };
}
