import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CALENDAR_LIMITS } from '../../src/calendar/parsing/expand.js';
import { syncConnection } from '../../src/calendar/index.js';
import { backends, describeOnBackends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';
import type { TestApp } from '../support/test-app.js';
import {
  apiRequest,
  cloneTemplateDatabase,
  randomApiKey,
  spawnServer,
  type ClonedDatabase,
  type SpawnedServer,
} from '../support/spawn-server.js';
import { waitForValue } from '../support/wait-for.js';
import { feedServer, icsCalendar, rssOf, sampleMax, secondlyFeed } from '../support/hostile-feeds.js';

async function connect(t: TestApp, resourceId: string, url: string): Promise<string> {
  const response = await t.request('POST', '/calendars/ics/connect', {
    body: { resource_id: resourceId, url },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json().connection_id as string;
}

const timed = (uid: string, extra: string[] = []) => [
  `UID:${uid}`,
  'DTSTART:20260520T090000Z',
  'DTEND:20260520T100000Z',
  `SUMMARY:${uid}`,
  ...extra,
];

describeOnBackends('hostile and huge calendars', (t) => {
  const server = feedServer();
  let base = '';
  let resourceId: string;

  beforeAll(async () => {
    base = await server.listen();
    resourceId = await createOpenResource(t(), { name: 'Ana', kind: 'person', time_zone: 'Europe/Berlin' });
  });
  afterAll(() => server.close());

  async function syncFeed(path: string, body: string) {
    server.bodies.set(path, body);
    const id = await connect(t(), resourceId, `${base}${path}`);
    const synced = await t().request('POST', `/calendars/ics/${id}/sync`);
    const shown = await t().request('GET', `/calendars/ics/${id}`);
    return { id, synced, shown: shown.json() };
  }

  it('reads spaced and lowercase rules, and names each event it still cannot read with its UID and why', async () => {
    const { id, synced, shown } = await syncFeed(
      '/three.ics',
      icsCalendar([
        timed('plain@example.com'),
        timed('spaced@example.com', ['RRULE:freq=weekly;BYDAY=MO, TU;count=4']),
        // No DTSTART: the text parses, the event cannot be placed.
        ['UID:no-start@example.com', 'SUMMARY:No start'],
      ]),
    );
    expect(synced.statusCode, synced.body).toBe(200);
    expect(synced.json().stats).toMatchObject({ fetched: 3, created: 3 });
    expect(shown.warning_count).toBe(1);
    expect(shown.warnings).toEqual([
      { uid: 'no-start@example.com', reason: expect.stringContaining('has no DTSTART') },
    ]);
    const events = await t().request('GET', `/calendars/ics/${id}/events`, {
      query: { start: '2026-05-18T00:00:00Z', end: '2026-06-18T00:00:00Z' },
    });
    expect(events.statusCode, events.body).toBe(200);
    const titles = (events.json().events as { title: string }[]).map((event) => event.title);
    // The spaced rule is read as meant: DTSTART and four Mondays and Tuesdays after it.
    expect(titles.filter((title) => title === 'spaced@example.com')).toHaveLength(5);
  });

  it('an event that does not parse at all is named in the warnings, and the rest of the feed is read', async () => {
    const broken = ['UID:broken@example.com', 'DTSTART:20260520T090000Z', 'THIS LINE HAS NO COLON'];
    const { synced, shown } = await syncFeed('/broken.ics', icsCalendar([timed('fine@example.com'), broken]));
    expect(synced.statusCode, synced.body).toBe(200);
    expect(synced.json().stats).toMatchObject({ fetched: 2 });
    expect(shown.status).toBe('active');
    expect(shown.warnings).toEqual([
      { uid: 'broken@example.com', reason: expect.stringContaining('THIS LINE HAS NO COLON') },
    ]);
  });

  it('an event read in part (a calendar scale Sched does not expand) and the feed as a whole are in the warnings, and stay there', async () => {
    const lunar = timed('lunar@example.com', ['RRULE:RSCALE=CHINESE;FREQ=YEARLY']);
    const { id, synced, shown } = await syncFeed(
      '/partly.ics',
      icsCalendar(
        [timed('plain-too@example.com'), lunar, timed('plain-too@example.com')],
        ['BEGIN:VTODO', 'UID:todo@example.com', 'END:VTODO'],
      ),
    );
    expect(synced.statusCode, synced.body).toBe(200);
    expect(shown.warnings).toEqual([
      { uid: 'lunar@example.com', reason: expect.stringContaining('RSCALE=CHINESE') },
    ]);
    expect(shown.warning_count).toBe(1);
    expect(shown.calendar_warnings).toEqual(
      expect.arrayContaining([
        expect.stringContaining('ignored 1 VTODO component'),
        expect.stringContaining('UID "plain-too@example.com": duplicate master'),
      ]),
    );
    // The next sync says the same: the warnings are kept with the events and the connection.
    expect((await t().request('POST', `/calendars/ics/${id}/sync`)).statusCode).toBe(200);
    const again = (await t().request('GET', `/calendars/ics/${id}`)).json();
    expect(again.warnings).toEqual(shown.warnings);
    expect(again.calendar_warnings).toEqual(shown.calendar_warnings);
  });

  it('the occurrence budget holds for the calendar as stored, not only for what one sync reads', async () => {
    const limits = { ...CALENDAR_LIMITS, occurrences: 1000 };
    const deps = { ...t().calendarDeps, calendarLimits: limits };
    // Daily series from a month ago: about 430 occurrences each in the stored span.
    const daily = (uid: string) => [
      `UID:${uid}`,
      'DTSTART:20260418T090000Z',
      'DURATION:PT30M',
      'RRULE:FREQ=DAILY',
      `SUMMARY:${uid}`,
    ];
    server.bodies.set('/growing.ics', icsCalendar([daily('a@example.com'), daily('b@example.com')]));
    const id = await connect(t(), resourceId, `${base}/growing.ics`);
    const count = async () =>
      Number(
        (
          await t()
            .database.db.selectFrom('calendar_occurrences')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .where('connection_id', '=', id)
            .executeTakeFirstOrThrow()
        ).n,
      );
    await syncConnection(deps, id);
    const first = await count();
    expect(first).toBeGreaterThan(800);
    expect(first).toBeLessThan(1000);
    // Two more series come: only they are read, and only the room the first two left is theirs.
    server.bodies.set(
      '/growing.ics',
      icsCalendar(['a', 'b', 'c', 'd'].map((name) => daily(`${name}@example.com`))),
    );
    const stats = await syncConnection(deps, id);
    expect(stats).toMatchObject({ fetched: 2, created: 2 });
    expect(await count()).toBe(1000);
    const shown = (await t().request('GET', `/calendars/ics/${id}`)).json();
    expect(shown.last_error).toContain('more than 1000 occurrences in the stored span');
  });

  it('series expanded again as time passes share what the single events leave, whatever the pull stored', async () => {
    const limits = { ...CALENDAR_LIMITS, occurrences: 1000 };
    const deps = { ...t().calendarDeps, calendarLimits: limits };
    const single = (i: number) => [
      `UID:one-${i}@example.com`,
      `DTSTART:202606${String((i % 28) + 1).padStart(2, '0')}T${String(i % 24).padStart(2, '0')}0000Z`,
      'DURATION:PT15M',
    ];
    const series = [
      'UID:standup@example.com',
      'DTSTART:20260418T090000Z',
      'DURATION:PT15M',
      'RRULE:FREQ=DAILY',
    ];
    const singles = Array.from({ length: 600 }, (_, i) => single(i));
    server.bodies.set('/aging.ics', icsCalendar([...singles, series]));
    const id = await connect(t(), resourceId, `${base}/aging.ics`);
    const seriesSpan = async () => {
      const row = await t()
        .database.db.selectFrom('calendar_occurrences as o')
        .innerJoin('calendar_events as e', 'e.event_id', 'o.event_id')
        .select((eb) => [eb.fn.countAll<string>().as('n'), sql<Date>`min(lower(o.during))`.as('first')])
        .where('o.connection_id', '=', id)
        .where('e.remote_id', '=', 'standup@example.com')
        .executeTakeFirstOrThrow();
      return { count: Number(row.n), first: new Date(row.first).getTime() };
    };
    const started = t().clock.now;
    try {
      await syncConnection(deps, id);
      const before = await seriesSpan();
      // The series has what the 600 single events leave of the 1,000 (the count stops a little short).
      expect(before.count).toBeGreaterThan(390);
      expect(before.count).toBeLessThanOrEqual(400);
      // Five weeks on, the stored span is renewed; the same sync also reads one new event, which
      // finds the budget spent.
      t().clock.advance(35 * 86_400_000);
      server.bodies.set('/aging.ics', icsCalendar([...singles, series, single(600)]));
      await syncConnection(deps, id);
      const after = await seriesSpan();
      // Expanded again from the new start of the span, with the same room as before: the new event
      // took none of it, since the series replace their own occurrences.
      expect(after.first).toBeGreaterThan(before.first);
      expect(after.count).toBeGreaterThan(390);
      expect(after.count).toBeLessThanOrEqual(400);
    } finally {
      t().clock.set(new Date(started).toISOString());
    }
  });

  it('a feed whose only event is malformed is a warning, not a 502', async () => {
    const broken = ['UID:alone@example.com', 'DTSTART:20260520T090000Z', 'THIS LINE HAS NO COLON'];
    const { synced, shown } = await syncFeed('/alone.ics', icsCalendar([broken]));
    expect(synced.statusCode, synced.body).toBe(200);
    expect(shown.status).toBe('active');
    expect(shown.last_error).toBeNull();
    expect(shown.warnings).toEqual([{ uid: 'alone@example.com', reason: expect.any(String) }]);
  });

  it('a NUL byte in a feed is no 500: the event is read without it', async () => {
    const { id, synced, shown } = await syncFeed(
      '/nul.ics',
      icsCalendar([
        timed('nul@example.com', ['DESCRIPTION:a\u0000b']).map((line) =>
          line.replace('SUMMARY:', 'SUMMARY:N\u0000'),
        ),
      ]),
    );
    expect(synced.statusCode, synced.body).toBe(200);
    expect(shown.warning_count).toBe(0);
    const stored = await t()
      .database.db.selectFrom('calendar_events')
      .select(['title', 'ics'])
      .where('connection_id', '=', id)
      .executeTakeFirstOrThrow();
    expect(stored.title).toBe('Nnul@example.com');
    expect(stored.ics).not.toContain('\u0000');
  });

  it('a connection whose syncs took their process down twice is quarantined, not retried', async () => {
    server.bodies.set('/crashy.ics', icsCalendar([timed('crashy@example.com')]));
    const id = await connect(t(), resourceId, `${base}/crashy.ics`);
    const db = t().database.db;
    // What a process that dies mid-sync leaves behind: its sync counted in and an expired lease.
    const crashOnce = () =>
      db
        .updateTable('calendar_connections')
        .set((eb) => ({
          unfinished_syncs: eb('unfinished_syncs', '+', 1),
          sync_lease_until: new Date(t().clock.now - 1000),
        }))
        .where('connection_id', '=', id)
        .execute();
    await crashOnce();
    // One crash: the next sync runs and clears the count.
    expect((await t().request('POST', `/calendars/ics/${id}/sync`)).statusCode).toBe(200);
    const afterOne = await db
      .selectFrom('calendar_connections')
      .select(['unfinished_syncs', 'status'])
      .where('connection_id', '=', id)
      .executeTakeFirstOrThrow();
    expect(afterOne).toEqual({ unfinished_syncs: 0, status: 'active' });
    await crashOnce();
    await crashOnce();
    const refused = await t().request('POST', `/calendars/ics/${id}/sync`);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().detail).toContain('2 syncs of this calendar ended with their process');
    const row = await db
      .selectFrom('calendar_connections')
      .select(['status', 'next_sync_at', 'sync_lease_until', 'failure_count'])
      .where('connection_id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'error', next_sync_at: null, sync_lease_until: null });
    // Counted as failing, so neither pending pushes nor channel renewals wake it (the worker's scan).
    expect(row.failure_count).toBeGreaterThan(0);
    expect((await t().request('GET', `/calendars/ics/${id}`)).json().last_error).toContain(
      'not synced automatically any more',
    );
    // Asked for by someone, it is tried again.
    expect((await t().request('POST', `/calendars/ics/${id}/sync`)).statusCode).toBe(200);
  });
});

const postgres = backends.find((backend) => backend.name === 'postgres')!;

describe.skipIf(postgres.skipReason)(
  `a sched serve process syncing a FREQ=SECONDLY feed${postgres.skipReason ? ` — SKIPPED: ${postgres.skipReason}` : ''}`,
  () => {
    const server = feedServer();
    let base = '';
    const key = randomApiKey();
    let database: ClonedDatabase;
    let sched: SpawnedServer | undefined;

    beforeAll(async () => {
      base = await server.listen();
      database = await cloneTemplateDatabase('hostile');
      sched = await spawnServer({
        DATABASE_URL: database.url,
        SCHED_BOOTSTRAP_API_KEY: key,
        SCHED_OUTBOUND_ALLOW: '127.0.0.1/32',
      });
    }, 120_000);
    afterAll(async () => {
      await sched?.stop();
      await database?.drop();
      await server.close();
    });

    const call = (method: string, path: string, body?: unknown) =>
      apiRequest(sched!, key, method, path, body);

    it('stores 3,000 series up to the occurrence budget, says so, and stays under 512 MB', async () => {
      // Each series starts at the next full hour and would give 10,000 occurrences on its own.
      server.bodies.set('/secondly.ics', secondlyFeed(Date.now()));
      const resource = await call('POST', '/resources', { name: 'Ana', kind: 'person', time_zone: 'UTC' });
      expect(resource.status).toBe(201);
      const rss = sampleMax(() => rssOf(sched!.pid));
      const connected = await call('POST', '/calendars/ics/connect', {
        resource_id: resource.body.resource_id,
        url: `${base}/secondly.ics`,
      });
      expect(connected.status, JSON.stringify(connected.body)).toBe(201);
      const id = connected.body.connection_id as string;
      // The server's own worker syncs the new connection.
      const shown = await waitForValue(
        'the first sync of the feed',
        async () => {
          const view = await call('GET', `/calendars/ics/${id}`);
          return view.body.last_synced_at ? view.body : undefined;
        },
        90_000,
        200,
      );
      const memory = await rss.stop();
      console.log(
        `SECONDLY feed: max RSS of the server ${Math.round(memory.max / 2 ** 20)} MB (${memory.count} samples)`,
      );
      expect(memory.max).toBeLessThan(512 * 2 ** 20);
      expect(shown.status).toBe('active');
      const n = CALENDAR_LIMITS.occurrences;
      expect(shown.last_error).toContain(
        `more than ${n} occurrences in the stored span; only the first ${n} are used`,
      );
      const client = await database.connect();
      try {
        // Kept up to the budget, not failed: the next sync is planned as usual.
        const row = await client.query(
          'select next_sync_at, failure_count from calendar_connections where connection_id = $1',
          [id],
        );
        expect(row.rows[0]).toMatchObject({ failure_count: 0, next_sync_at: expect.any(Date) });
        const counted = await client.query(
          'select count(*)::int as n from calendar_occurrences where connection_id = $1',
          [id],
        );
        expect(counted.rows[0].n).toBe(n);
      } finally {
        await client.end();
      }
    }, 120_000);
  },
);
