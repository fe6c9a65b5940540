import { type CompiledQuery, type KyselyPlugin, sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadCalendarBusy } from '../../src/calendar/busy.js';
import { defaultSchedule, type Interval } from '../../src/domain/index.js';
import type { BookableResource } from '../../src/services/bookable-resources.js';
import type { Db } from '../../src/storage/database.js';
import { describeOnBackends } from '../support/backends.js';
import { type ConnectedFeed, connectFeed } from '../support/ics-feed.js';

/*
 * Occurrences are indexed by their start (migration 2026-12-04-0002). A read of a window still
 * finds an occurrence that began long before it, the reads are served by those indexes, and an
 * occurrence goes with its connection through its event.
 */

const at = (iso: string) => Date.parse(iso);
const DAY = 86_400_000;

const FEED = [
  'BEGIN:VCALENDAR',
  'VERSION:2.0',
  'PRODID:-//Example//Reads//EN',
  'BEGIN:VEVENT',
  'UID:long',
  'DTSTAMP:20260501T000000Z',
  'DTSTART:20260520T000000Z',
  'DTEND:20260610T000000Z',
  'SUMMARY:Three weeks away',
  'END:VEVENT',
  'BEGIN:VEVENT',
  'UID:daily',
  'DTSTAMP:20260501T000000Z',
  'DTSTART:20260519T090000Z',
  'DTEND:20260519T100000Z',
  'RRULE:FREQ=DAILY;COUNT=60',
  'SUMMARY:Stand-up',
  'END:VEVENT',
  'END:VCALENDAR',
  '',
].join('\r\n');

/** Well inside the long event and two weeks after it began. */
const WINDOW: Interval = { start: at('2026-06-03T00:00:00Z'), end: at('2026-06-04T00:00:00Z') };

describeOnBackends('occurrence reads', (t) => {
  let feed: ConnectedFeed;
  let resourceId: string;
  let calendarId: string;

  beforeAll(async () => {
    feed = await connectFeed(t(), 'Reads', FEED);
    ({ resourceId, calendarId } = feed);
  });
  afterAll(() => feed?.close());

  const resource = (): BookableResource => ({
    resourceId,
    timeZone: 'UTC',
    schedule: defaultSchedule('UTC'),
    hasBlockingCalendars: true,
  });

  /** Every statement run through the returned database, compiled as it went to the server. */
  function recording(db: Db): { db: Db; queries: CompiledQuery[] } {
    const queries: CompiledQuery[] = [];
    const executor = db.getExecutor();
    const plugin: KyselyPlugin = {
      transformQuery: (args) => {
        queries.push(executor.compileQuery(args.node, args.queryId));
        return args.node;
      },
      transformResult: async (args) => args.result,
    };
    return { db: db.withPlugin(plugin), queries };
  }

  it('finds an occurrence that began long before the window, in busy time and in the listing', async () => {
    const busy = await loadCalendarBusy(t().database.db, [resource()], WINDOW);
    const intervals = (busy.get(resourceId) ?? []).map((i) => [
      new Date(i.start).toISOString(),
      i.end - i.start,
    ]);
    expect(intervals.sort()).toEqual([
      ['2026-05-20T00:00:00.000Z', 21 * DAY],
      ['2026-06-03T09:00:00.000Z', DAY / 24],
    ]);
    const listed = await t().request('GET', `/calendars/ics/${calendarId}/events`, {
      query: { start: new Date(WINDOW.start).toISOString(), end: new Date(WINDOW.end).toISOString() },
    });
    expect(listed.statusCode, listed.body).toBe(200);
    const events = listed.json().events as { start_time: string; title: string }[];
    expect(events.map((e) => [e.start_time, e.title])).toEqual([
      ['2026-05-20T00:00:00Z', 'Three weeks away'],
      ['2026-06-03T09:00:00Z', 'Stand-up'],
    ]);
  });

  it('reads busy time through the index on the occurrences’ start, bounded by the window', async () => {
    const { db, queries } = recording(t().database.db);
    await loadCalendarBusy(db, [resource()], WINDOW);
    const read = queries.find((query) => /from "calendar_occurrences"/.test(query.sql));
    expect(read, queries.map((query) => query.sql).join('\n')).toBeDefined();
    const plan = await t()
      .database.db.connection()
      .execute(async (connection) => {
        // The table is tiny here: ask for the plan PostgreSQL would choose were it large.
        await sql`set enable_seqscan = off`.execute(connection);
        const explained = await connection.executeQuery<{ 'QUERY PLAN': unknown }>({
          ...read!,
          sql: `explain (format json) ${read!.sql}`,
        });
        await sql`reset enable_seqscan`.execute(connection);
        return JSON.stringify(explained.rows[0]!['QUERY PLAN']);
      });
    expect(plan).toContain('calendar_occurrences_busy_idx');
    expect(plan).toMatch(/"Index Cond":"[^"]*lower\(during\)\)? </);
  });

  it('disconnecting removes the connection’s occurrences with its events', async () => {
    const db = t().database.db;
    const { connection_id } = await db
      .selectFrom('calendar_connections')
      .select('connection_id')
      .where('resource_id', '=', resourceId)
      .executeTakeFirstOrThrow();
    const count = async () =>
      Number(
        (
          await sql<{ n: string }>`select count(*) as n from calendar_occurrences
            where connection_id = ${connection_id}`.execute(db)
        ).rows[0]!.n,
      );
    expect(await count()).toBe(61);
    const removed = await t().request('DELETE', `/calendars/ics/${calendarId}`);
    expect(removed.statusCode, removed.body).toBe(200);
    expect(await count()).toBe(0);
  });
});
