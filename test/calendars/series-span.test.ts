import { type KyselyPlugin, sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadCalendarBusy } from '../../src/calendar/busy.js';
import { defaultSchedule, type Interval } from '../../src/domain/index.js';
import type { BookableResource } from '../../src/services/bookable-resources.js';
import { describeOnBackends } from '../support/backends.js';
import { type ConnectedFeed, connectFeed } from '../support/ics-feed.js';
import type { TestApp } from '../support/test-app.js';

/*
 * Each stored series keeps the span its occurrences can reach, so a window past the stored
 * occurrences reads only the series that reach it: not one that ended before, while an RDATE or an
 * override moved past UNTIL, a series without end, and a row stored without a span still count.
 */

const at = (iso: string) => Date.parse(iso);
const HOUR = 3_600_000;

function event(uid: string, lines: string[]): string[] {
  return ['BEGIN:VEVENT', `UID:${uid}`, 'DTSTAMP:20260501T000000Z', ...lines, 'END:VEVENT'];
}

const FEED = [
  'BEGIN:VCALENDAR',
  'VERSION:2.0',
  'PRODID:-//Example//Spans//EN',
  ...event('ended', [
    'DTSTART:20260519T080000Z',
    'DTEND:20260519T090000Z',
    'RRULE:FREQ=DAILY;UNTIL=20260630T000000Z',
  ]),
  ...event('rdate', [
    'DTSTART:20260520T080000Z',
    'DTEND:20260520T090000Z',
    'RRULE:FREQ=DAILY;UNTIL=20260601T000000Z',
    'RDATE:20300305T100000Z',
  ]),
  ...event('moved', ['DTSTART:20260521T080000Z', 'DTEND:20260521T090000Z', 'RRULE:FREQ=WEEKLY;COUNT=3']),
  // The second instance moved years past the rule's end, the third years before DTSTART.
  ...event('moved', ['RECURRENCE-ID:20260528T080000Z', 'DTSTART:20300306T120000Z', 'DTEND:20300306T130000Z']),
  ...event('moved', ['RECURRENCE-ID:20260604T080000Z', 'DTSTART:20200106T100000Z', 'DTEND:20200106T110000Z']),
  ...event('forever', ['DTSTART:20260522T070000Z', 'DTEND:20260522T073000Z', 'RRULE:FREQ=DAILY']),
  'END:VCALENDAR',
  '',
].join('\r\n');

/** Far past the stored span (which ends about 400 days after 2026-05-18). */
const FAR: Interval = { start: at('2030-03-04T00:00:00Z'), end: at('2030-03-08T00:00:00Z') };
/** Before the stored span, which starts 31 days before 2026-05-18. */
const PAST: Interval = { start: at('2020-01-05T00:00:00Z'), end: at('2020-01-08T00:00:00Z') };

describeOnBackends('series spans', (t) => {
  let feed: ConnectedFeed;
  let resourceId: string;
  let calendarId: string;

  beforeAll(async () => {
    feed = await connectFeed(t(), 'Spans', FEED);
    ({ resourceId, calendarId } = feed);
  });
  afterAll(() => feed?.close());

  /** The busy time loadCalendarBusy finds in `range`, and the series whose text it read for it. */
  async function busyAndRead(app: TestApp, range: Interval) {
    const read: string[] = [];
    const recordSeries: KyselyPlugin = {
      transformQuery: (args) => args.node,
      transformResult: async (args) => {
        for (const row of args.result.rows as Record<string, unknown>[]) {
          const uid = typeof row.ics === 'string' ? /^UID:(.*)$/m.exec(row.ics)?.[1]?.trim() : undefined;
          if (uid) read.push(uid);
        }
        return args.result;
      },
    };
    const resource: BookableResource = {
      resourceId,
      timeZone: 'UTC',
      schedule: defaultSchedule('UTC'),
      hasBlockingCalendars: true,
    };
    const busy = await loadCalendarBusy(app.database.db.withPlugin(recordSeries), [resource], range);
    const intervals = (busy.get(resourceId) ?? []).map((i) => [
      new Date(i.start).toISOString(),
      i.end - i.start,
    ]);
    return { busy: intervals.sort((a, b) => String(a[0]).localeCompare(String(b[0]))), read: read.sort() };
  }

  async function spans() {
    const rows = await t()
      .database.db.selectFrom('calendar_events')
      .select(['uid', 'series_from', 'series_until'])
      .orderBy('uid')
      .execute();
    return new Map(rows.map((row) => [row.uid, row]));
  }

  it('stores each series’ span, covering RDATEs and overrides moved past UNTIL or before DTSTART', async () => {
    const stored = await spans();
    const ended = stored.get('ended')!;
    expect(ended.series_from!.getTime()).toBeLessThanOrEqual(at('2026-05-19T08:00:00Z'));
    expect(ended.series_until!.getTime()).toBeGreaterThanOrEqual(at('2026-06-29T09:00:00Z'));
    expect(ended.series_until!.getTime()).toBeLessThan(at('2026-07-03T00:00:00Z'));
    expect(stored.get('rdate')!.series_until!.getTime()).toBeGreaterThanOrEqual(at('2030-03-05T11:00:00Z'));
    const moved = stored.get('moved')!;
    expect(moved.series_from!.getTime()).toBeLessThanOrEqual(at('2020-01-06T10:00:00Z'));
    expect(moved.series_until!.getTime()).toBeGreaterThanOrEqual(at('2030-03-06T13:00:00Z'));
    expect(stored.get('forever')!.series_until).toBeNull();
  });

  it('past the stored span reads only the series that reach the window, and each blocks where it falls', async () => {
    const far = await busyAndRead(t(), FAR);
    expect(far.read).toEqual(['forever', 'moved', 'rdate']);
    expect(far.busy).toEqual([
      ['2030-03-04T07:00:00.000Z', HOUR / 2],
      ['2030-03-05T07:00:00.000Z', HOUR / 2],
      ['2030-03-05T10:00:00.000Z', HOUR],
      ['2030-03-06T07:00:00.000Z', HOUR / 2],
      ['2030-03-06T12:00:00.000Z', HOUR],
      ['2030-03-07T07:00:00.000Z', HOUR / 2],
    ]);
    const past = await busyAndRead(t(), PAST);
    expect(past.read).toEqual(['moved']);
    expect(past.busy).toEqual([['2020-01-06T10:00:00.000Z', HOUR]]);
    const later = await busyAndRead(t(), {
      start: at('2041-06-01T00:00:00Z'),
      end: at('2041-06-02T00:00:00Z'),
    });
    expect(later.read).toEqual(['forever']);
    expect(later.busy).toEqual([['2041-06-01T07:00:00.000Z', HOUR / 2]]);
  });

  it('the event listing past the stored span shows the moved and added occurrences', async () => {
    const response = await t().request('GET', `/calendars/ics/${calendarId}/events`, {
      query: { start: new Date(FAR.start).toISOString(), end: new Date(FAR.end).toISOString() },
    });
    expect(response.statusCode, response.body).toBe(200);
    const events = response.json().events as { start_time: string }[];
    expect(events.map((e) => e.start_time)).toEqual([
      '2030-03-04T07:00:00Z',
      '2030-03-05T07:00:00Z',
      '2030-03-05T10:00:00Z',
      '2030-03-06T07:00:00Z',
      '2030-03-06T12:00:00Z',
      '2030-03-07T07:00:00Z',
    ]);
  });

  it('a series stored without a span (before spans were kept) is read as unbounded', async () => {
    const db = t().database.db;
    await sql`update calendar_events set series_from = null, series_until = null
      where uid in ('ended', 'rdate')`.execute(db);
    const far = await busyAndRead(t(), FAR);
    expect(far.read).toEqual(['ended', 'forever', 'moved', 'rdate']);
    expect(far.busy).toContainEqual(['2030-03-05T10:00:00.000Z', HOUR]);
    const past = await busyAndRead(t(), PAST);
    expect(past.read).toEqual(['ended', 'moved', 'rdate']);
    // The next sync that stores the events writes their spans again.
    await db.updateTable('calendar_events').set({ etag: null }).execute();
    const synced = await t().request('POST', `/calendars/ics/${calendarId}/sync`);
    expect(synced.statusCode, synced.body).toBe(200);
    expect((await spans()).get('rdate')!.series_until).not.toBeNull();
  });
});
