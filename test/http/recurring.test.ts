import ICAL from 'ical.js';
import { Temporal } from 'temporal-polyfill';
import { sql } from 'kysely';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandObject } from '../../src/ical/expand-object.js';
import { splitCalendar } from '../../src/ical/split-calendar.js';
import { backends, describeOnBackends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

// The suite's clock: Thursday 2026-10-01 06:00Z, so the autumn 2026 and spring 2027 changes of
// daylight-saving time are inside the default booking horizon (365 days).
const NOW = '2026-10-01T06:00:00Z';

type BookingBody = {
  booking_id: string;
  status: string;
  start_time: string;
  end_time: string;
  resource_ids: string[];
  series_id: string | null;
  cancel_reason: string | null;
};
type SeriesBody = {
  series_id: string;
  recurrence: Record<string, unknown>;
  time_zone: string;
  bookings: BookingBody[];
};

const resourceIn = (t: TestApp, timeZone: string, name = 'Room') =>
  createOpenResource(t, { name, kind: 'room', time_zone: timeZone });

function book(
  t: TestApp,
  resourceIds: string[],
  start: string,
  end: string,
  extra: Record<string, unknown> = {},
) {
  return t.request('POST', '/bookings', {
    body: { resource_ids: resourceIds, start_time: start, end_time: end, title: 'Standup', ...extra },
  });
}

function bookSeries(
  t: TestApp,
  resourceIds: string[],
  start: string,
  end: string,
  recurrence: Record<string, unknown>,
  extra: Record<string, unknown> = {},
) {
  return book(t, resourceIds, start, end, { recurrence, ...extra });
}

async function created(response: Awaited<ReturnType<TestApp['request']>>): Promise<SeriesBody> {
  expect(response.statusCode, response.body).toBe(201);
  return response.json<SeriesBody>();
}

function localClock(instant: string, zone: string): string {
  return Temporal.Instant.from(instant)
    .toZonedDateTimeISO(zone)
    .toPlainTime()
    .toString({ smallestUnit: 'minute' });
}

function offsetOf(instant: string, zone: string): string {
  return Temporal.Instant.from(instant).toZonedDateTimeISO(zone).offset;
}

async function bookingsOf(t: TestApp, resourceId: string): Promise<BookingBody[]> {
  const res = await t.request('GET', '/bookings', { query: { resource_id: resourceId, limit: '500' } });
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ bookings: BookingBody[] }>().bookings;
}

async function eventsFor(t: TestApp, bookingIds: readonly string[]): Promise<string[]> {
  const wanted = new Set(bookingIds);
  const rows = await t.database.db.selectFrom('webhook_events').select(['type', 'payload']).execute();
  return rows
    .filter((row) =>
      wanted.has((JSON.parse(row.payload) as { data: { booking_id: string } }).data.booking_id),
    )
    .map((row) => row.type)
    .sort();
}

function fieldsOf(response: Awaited<ReturnType<TestApp['request']>>): string[] {
  expect(response.statusCode, response.body).toBe(400);
  expect(response.headers['content-type']).toContain('application/problem+json');
  return response.json<{ errors: { field: string }[] }>().errors.map((error) => error.field);
}

describeOnBackends(
  'recurring bookings',
  (t) => {
    it('subscribes a webhook to the booking events', async () => {
      const res = await t().request('POST', '/webhooks', {
        body: {
          url: 'http://127.0.0.1:9/hooks',
          events: ['booking.created', 'booking.pending', 'booking.cancelled'],
        },
      });
      expect(res.statusCode, res.body).toBe(201);
    });

    it('a weekly series in New York stays at 09:00 local across the end of daylight-saving time (2026-11-01)', async () => {
      const zone = 'America/New_York';
      const room = await resourceIn(t(), zone);
      const series = await created(
        await bookSeries(t(), [room], '2026-10-20T09:00:00-04:00', '2026-10-20T10:00:00-04:00', {
          frequency: 'weekly',
          count: 4,
        }),
      );
      expect(series.time_zone).toBe(zone);
      expect(series.recurrence).toEqual({
        frequency: 'weekly',
        interval: 1,
        count: 4,
        until: null,
        by_weekday: null,
      });
      expect(series.bookings.map((b) => [b.start_time, b.end_time])).toEqual([
        ['2026-10-20T13:00:00Z', '2026-10-20T14:00:00Z'],
        ['2026-10-27T13:00:00Z', '2026-10-27T14:00:00Z'],
        ['2026-11-03T14:00:00Z', '2026-11-03T15:00:00Z'],
        ['2026-11-10T14:00:00Z', '2026-11-10T15:00:00Z'],
      ]);
      expect(series.bookings.map((b) => localClock(b.start_time, zone))).toEqual(Array(4).fill('09:00'));
      expect(series.bookings.map((b) => offsetOf(b.start_time, zone))).toEqual([
        '-04:00',
        '-04:00',
        '-05:00',
        '-05:00',
      ]);
      expect(series.bookings.every((b) => b.series_id === series.series_id && b.status === 'confirmed')).toBe(
        true,
      );

      const read = await t().request('GET', `/booking-series/${series.series_id}`);
      expect(read.statusCode, read.body).toBe(200);
      expect(read.json()).toEqual(series);
      const one = await t().request('GET', `/bookings/${series.bookings[2]!.booking_id}`);
      expect(one.json()).toMatchObject({ series_id: series.series_id, start_time: '2026-11-03T14:00:00Z' });
      expect((await bookingsOf(t(), room)).map((b) => b.booking_id)).toEqual(
        series.bookings.map((b) => b.booking_id),
      );
    });

    it('a weekly series in Berlin stays at 09:00 local across 2026-10-25', async () => {
      const zone = 'Europe/Berlin';
      const room = await resourceIn(t(), zone);
      const series = await created(
        await bookSeries(t(), [room], '2026-10-13T07:00:00Z', '2026-10-13T08:00:00Z', {
          frequency: 'weekly',
          count: 4,
        }),
      );
      expect(series.bookings.map((b) => b.start_time)).toEqual([
        '2026-10-13T07:00:00Z',
        '2026-10-20T07:00:00Z',
        '2026-10-27T08:00:00Z',
        '2026-11-03T08:00:00Z',
      ]);
      expect(series.bookings.map((b) => localClock(b.start_time, zone))).toEqual(Array(4).fill('09:00'));
      expect(series.bookings.map((b) => offsetOf(b.start_time, zone))).toEqual([
        '+02:00',
        '+02:00',
        '+01:00',
        '+01:00',
      ]);
    });

    it('spring forward: 09:00 local in New York (2027-03-14) and Berlin (2027-03-28)', async () => {
      const ny = await resourceIn(t(), 'America/New_York');
      const nySeries = await created(
        await bookSeries(t(), [ny], '2027-03-02T14:00:00Z', '2027-03-02T15:00:00Z', {
          frequency: 'weekly',
          count: 4,
        }),
      );
      expect(nySeries.bookings.map((b) => b.start_time)).toEqual([
        '2027-03-02T14:00:00Z',
        '2027-03-09T14:00:00Z',
        '2027-03-16T13:00:00Z',
        '2027-03-23T13:00:00Z',
      ]);
      const berlin = await resourceIn(t(), 'Europe/Berlin');
      const berlinSeries = await created(
        await bookSeries(t(), [berlin], '2027-03-16T08:00:00Z', '2027-03-16T09:00:00Z', {
          frequency: 'weekly',
          count: 4,
        }),
      );
      expect(berlinSeries.bookings.map((b) => b.start_time)).toEqual([
        '2027-03-16T08:00:00Z',
        '2027-03-23T08:00:00Z',
        '2027-03-30T07:00:00Z',
        '2027-04-06T07:00:00Z',
      ]);
      for (const [series, zone] of [
        [nySeries, 'America/New_York'],
        [berlinSeries, 'Europe/Berlin'],
      ] as const) {
        expect(series.bookings.map((b) => localClock(b.start_time, zone))).toEqual(Array(4).fill('09:00'));
        expect(new Set(series.bookings.map((b) => offsetOf(b.start_time, zone))).size).toBe(2);
      }
    });

    it('the occurrences follow the first resource’s zone; every resource is booked for each', async () => {
      const berlin = await resourceIn(t(), 'Europe/Berlin', 'Berlin room');
      const ny = await resourceIn(t(), 'America/New_York', 'New York room');
      const series = await created(
        await bookSeries(t(), [berlin, ny], '2026-10-20T07:00:00Z', '2026-10-20T08:00:00Z', {
          frequency: 'weekly',
          count: 2,
        }),
      );
      expect(series.time_zone).toBe('Europe/Berlin');
      expect(series.bookings.map((b) => b.start_time)).toEqual([
        '2026-10-20T07:00:00Z',
        '2026-10-27T08:00:00Z',
      ]);
      expect((await bookingsOf(t(), ny)).map((b) => b.start_time)).toEqual([
        '2026-10-20T07:00:00Z',
        '2026-10-27T08:00:00Z',
      ]);
    });

    it('a conflict on the 7th occurrence refuses the whole series and lists exactly that occurrence', async () => {
      const room = await resourceIn(t(), 'America/New_York');
      // The 7th Tuesday from 2026-10-13 is 2026-11-24, 09:00 EST = 14:00Z.
      const blocker = await book(t(), [room], '2026-11-24T14:30:00Z', '2026-11-24T15:30:00Z');
      expect(blocker.statusCode, blocker.body).toBe(201);
      const seriesBefore = await t().database.db.selectFrom('booking_series').select('series_id').execute();

      const refused = await bookSeries(t(), [room], '2026-10-13T13:00:00Z', '2026-10-13T14:00:00Z', {
        frequency: 'weekly',
        count: 10,
      });
      expect(refused.statusCode, refused.body).toBe(409);
      const problem = refused.json();
      expect(problem.code).toBe('SLOT_UNAVAILABLE');
      expect(problem.occurrences).toEqual([
        {
          start_time: '2026-11-24T14:00:00Z',
          end_time: '2026-11-24T15:00:00Z',
          conflicts: [
            {
              resource_id: room,
              kind: 'booking',
              start_time: '2026-11-24T14:30:00Z',
              end_time: '2026-11-24T15:30:00Z',
            },
          ],
        },
      ]);
      expect(problem.conflicts).toEqual(problem.occurrences[0].conflicts);
      expect((await bookingsOf(t(), room)).map((b) => b.booking_id)).toEqual([blocker.json().booking_id]);
      const seriesAfter = await t().database.db.selectFrom('booking_series').select('series_id').execute();
      expect(seriesAfter).toHaveLength(seriesBefore.length);

      // Without the 7th (count 6) the same series fits.
      const fits = await created(
        await bookSeries(t(), [room], '2026-10-13T13:00:00Z', '2026-10-13T14:00:00Z', {
          frequency: 'weekly',
          count: 6,
        }),
      );
      expect(fits.bookings).toHaveLength(6);
    });

    it('lists every conflicting occurrence, including other series and schedule limits', async () => {
      const room = await createOpenResource(
        t(),
        { name: 'Near horizon', kind: 'room', time_zone: 'UTC' },
        { booking_horizon_days: 30 },
      );
      const refused = await bookSeries(t(), [room], '2026-10-26T10:00:00Z', '2026-10-26T11:00:00Z', {
        frequency: 'weekly',
        count: 3,
      });
      expect(refused.statusCode, refused.body).toBe(409);
      expect(
        refused
          .json<{ occurrences: { start_time: string; conflicts: { kind: string }[] }[] }>()
          .occurrences.map((o) => [o.start_time, o.conflicts.map((c) => c.kind)]),
      ).toEqual([
        ['2026-11-02T10:00:00Z', ['outside_schedule']],
        ['2026-11-09T10:00:00Z', ['outside_schedule']],
      ]);
      const open = await resourceIn(t(), 'UTC');
      await created(
        await bookSeries(t(), [open], '2026-10-05T10:00:00Z', '2026-10-05T11:00:00Z', {
          frequency: 'daily',
          count: 5,
        }),
      );
      const second = await bookSeries(t(), [open], '2026-10-07T10:30:00Z', '2026-10-07T11:30:00Z', {
        frequency: 'daily',
        count: 5,
      });
      expect(second.statusCode).toBe(409);
      expect(
        second.json<{ occurrences: { start_time: string }[] }>().occurrences.map((o) => o.start_time),
      ).toEqual(['2026-10-07T10:30:00Z', '2026-10-08T10:30:00Z', '2026-10-09T10:30:00Z']);
    });

    it('count and until: at most 100 occurrences; until includes an occurrence starting at it', async () => {
      const room = await resourceIn(t(), 'UTC');
      const hundred = await created(
        await bookSeries(t(), [room], '2026-10-02T08:00:00Z', '2026-10-02T08:30:00Z', {
          frequency: 'daily',
          count: 100,
        }),
      );
      expect(hundred.bookings).toHaveLength(100);
      expect(hundred.bookings.at(-1)!.start_time).toBe('2027-01-09T08:00:00Z');

      const until = await created(
        await bookSeries(t(), [room], '2026-10-02T12:00:00Z', '2026-10-02T12:30:00Z', {
          frequency: 'weekly',
          until: '2026-10-16T12:00:00Z',
        }),
      );
      expect(until.recurrence).toMatchObject({ count: null, until: '2026-10-16T12:00:00Z' });
      expect(until.bookings.map((b) => b.start_time)).toEqual([
        '2026-10-02T12:00:00Z',
        '2026-10-09T12:00:00Z',
        '2026-10-16T12:00:00Z',
      ]);

      const start = ['2026-10-02T14:00:00Z', '2026-10-02T14:30:00Z'] as const;
      expect(fieldsOf(await bookSeries(t(), [room], ...start, { frequency: 'daily', count: 101 }))).toEqual([
        'recurrence.count',
      ]);
      const tooLong = await bookSeries(t(), [room], ...start, {
        frequency: 'daily',
        until: '2027-01-10T14:00:00Z',
      });
      expect(fieldsOf(tooLong)).toEqual(['recurrence.until']);
      expect(tooLong.json().detail).toContain('more than 100');
      expect(fieldsOf(await bookSeries(t(), [room], ...start, { frequency: 'daily' }))).toEqual([
        'recurrence',
      ]);
      expect(
        fieldsOf(
          await bookSeries(t(), [room], ...start, {
            frequency: 'daily',
            count: 2,
            until: '2026-10-09T14:00:00Z',
          }),
        ),
      ).toEqual(['recurrence']);
      expect(
        fieldsOf(
          await bookSeries(t(), [room], ...start, { frequency: 'daily', until: '2026-10-01T14:00:00Z' }),
        ),
      ).toEqual(['recurrence.until']);
      expect((await bookingsOf(t(), room)).length).toBe(103);
    });

    it('validation errors name the field', async () => {
      const room = await resourceIn(t(), 'UTC');
      const start = ['2026-10-05T09:00:00Z', '2026-10-05T10:00:00Z'] as const; // a Monday
      const unknownDay = await bookSeries(t(), [room], ...start, {
        frequency: 'weekly',
        count: 3,
        by_weekday: ['mon', 'funday'],
      });
      expect(fieldsOf(unknownDay)).toEqual(['recurrence.by_weekday[1]']);
      expect(unknownDay.json().errors[0].message).toContain('mon, tue, wed, thu, fri, sat, sun');
      expect(
        fieldsOf(
          await bookSeries(t(), [room], ...start, {
            frequency: 'weekly',
            count: 3,
            by_weekday: ['mon', 'mon'],
          }),
        ),
      ).toEqual(['recurrence.by_weekday']);
      expect(
        fieldsOf(
          await bookSeries(t(), [room], ...start, { frequency: 'weekly', count: 3, by_weekday: ['tue'] }),
        ),
      ).toEqual(['recurrence.by_weekday']);
      expect(
        fieldsOf(
          await bookSeries(t(), [room], ...start, { frequency: 'daily', count: 3, by_weekday: ['mon'] }),
        ),
      ).toEqual(['recurrence.by_weekday']);
      expect(fieldsOf(await bookSeries(t(), [room], ...start, { frequency: 'yearly', count: 3 }))).toEqual([
        'recurrence.frequency',
      ]);
      expect(
        fieldsOf(await bookSeries(t(), [room], ...start, { frequency: 'daily', interval: 0, count: 3 })),
      ).toEqual(['recurrence.interval']);
      expect(fieldsOf(await bookSeries(t(), [room], ...start, { frequency: 'daily', count: '3' }))).toEqual([
        'recurrence.count',
      ]);
      expect(
        fieldsOf(await bookSeries(t(), [room], ...start, { frequency: 'daily', count: 3, extra: 1 })),
      ).toEqual(['recurrence.extra']);
      // Two days long, every day: the occurrences would overlap each other.
      expect(
        fieldsOf(
          await bookSeries(t(), [room], '2026-10-05T09:00:00Z', '2026-10-07T09:00:00Z', {
            frequency: 'daily',
            count: 3,
          }),
        ),
      ).toEqual(['recurrence']);
      const hold = await t().request('POST', '/holds', {
        body: { resource_ids: [room], start_time: start[0], end_time: start[1] },
      });
      expect(hold.statusCode, hold.body).toBe(201);
      expect(
        fieldsOf(
          await bookSeries(
            t(),
            [room],
            ...start,
            { frequency: 'daily', count: 2 },
            { hold_id: hold.json().hold_id },
          ),
        ),
      ).toEqual(['hold_id']);
      expect(await bookingsOf(t(), room)).toEqual([]);
    });

    it('weekly on several weekdays with an interval', async () => {
      const room = await resourceIn(t(), 'Europe/Berlin');
      const series = await created(
        await bookSeries(t(), [room], '2026-10-14T08:00:00+02:00', '2026-10-14T09:00:00+02:00', {
          frequency: 'weekly',
          interval: 2,
          by_weekday: ['wed', 'mon'],
          count: 4,
        }),
      );
      expect(series.recurrence.by_weekday).toEqual(['mon', 'wed']);
      expect(series.bookings.map((b) => b.start_time)).toEqual([
        '2026-10-14T06:00:00Z',
        '2026-10-26T07:00:00Z',
        '2026-10-28T07:00:00Z',
        '2026-11-09T07:00:00Z',
      ]);
    });

    it('each occurrence emits booking.created (and booking.pending); the series has one audit entry', async () => {
      const room = await resourceIn(t(), 'UTC');
      const series = await created(
        await bookSeries(
          t(),
          [room],
          '2026-10-06T09:00:00Z',
          '2026-10-06T10:00:00Z',
          { frequency: 'monthly', count: 3 },
          { status: 'pending' },
        ),
      );
      expect(series.bookings.map((b) => [b.start_time, b.status])).toEqual([
        ['2026-10-06T09:00:00Z', 'pending'],
        ['2026-11-06T09:00:00Z', 'pending'],
        ['2026-12-06T09:00:00Z', 'pending'],
      ]);
      const ids = series.bookings.map((b) => b.booking_id);
      expect(await eventsFor(t(), ids)).toEqual([
        ...Array(3).fill('booking.created'),
        ...Array(3).fill('booking.pending'),
      ]);
      const audit = await t()
        .database.db.selectFrom('audit_log')
        .select(['action', 'target_type', 'details'])
        .where('target_id', '=', series.series_id)
        .execute();
      expect(audit.map((entry) => [entry.action, entry.target_type])).toEqual([
        ['booking_series.created', 'booking_series'],
      ]);
      expect(audit[0]!.details).toMatchObject({ booking_ids: ids, resource_ids: [room], status: 'pending' });
      // A pending occurrence blocks its time like any pending booking.
      expect((await book(t(), [room], '2026-11-06T09:30:00Z', '2026-11-06T10:30:00Z')).statusCode).toBe(409);
    });

    it('assign "one" books the one resource free for every occurrence, or refuses', async () => {
      const a = await resourceIn(t(), 'UTC', 'A');
      const b = await resourceIn(t(), 'UTC', 'B');
      const c = await resourceIn(t(), 'UTC', 'C');
      expect((await book(t(), [a], '2026-10-22T09:00:00Z', '2026-10-22T10:00:00Z')).statusCode).toBe(201);
      expect((await book(t(), [b], '2026-10-15T09:00:00Z', '2026-10-15T10:00:00Z')).statusCode).toBe(201);
      const rule = { frequency: 'weekly', count: 3 };
      const start = ['2026-10-08T09:00:00Z', '2026-10-08T10:00:00Z'] as const;

      const refused = await bookSeries(t(), [a, b], ...start, rule, { assign: 'one' });
      expect(refused.statusCode, refused.body).toBe(409);
      const occurrences = refused.json<{
        occurrences: { start_time: string; conflicts: { resource_id: string }[] }[];
      }>().occurrences;
      expect(occurrences.map((o) => [o.start_time, o.conflicts.map((x) => x.resource_id)])).toEqual([
        ['2026-10-15T09:00:00Z', [b]],
        ['2026-10-22T09:00:00Z', [a]],
      ]);

      const chosen = await created(await bookSeries(t(), [a, b, c], ...start, rule, { assign: 'one' }));
      expect(chosen.bookings.map((x) => x.resource_ids)).toEqual([[c], [c], [c]]);
    });

    it('cancel from the 4th occurrence onwards frees those times, once; without from, the rest', async () => {
      const room = await resourceIn(t(), 'America/New_York');
      const series = await created(
        await bookSeries(t(), [room], '2026-10-20T13:00:00Z', '2026-10-20T14:00:00Z', {
          frequency: 'weekly',
          count: 6,
        }),
      );
      const fourth = series.bookings[3]!;
      expect(fourth.start_time).toBe('2026-11-10T14:00:00Z');
      const cancelled = await t().request('POST', `/booking-series/${series.series_id}/cancel`, {
        body: { from: '2026-11-10T09:00:00-05:00', reason: 'moved to Thursdays' },
      });
      expect(cancelled.statusCode, cancelled.body).toBe(200);
      const after = cancelled.json<SeriesBody>();
      expect(after.bookings.map((b) => b.status)).toEqual([
        'confirmed',
        'confirmed',
        'confirmed',
        'cancelled',
        'cancelled',
        'cancelled',
      ]);
      expect(after.bookings[3]!.cancel_reason).toBe('moved to Thursdays');
      const later = series.bookings.slice(3).map((b) => b.booking_id);
      expect(await eventsFor(t(), later)).toEqual([
        ...Array(3).fill('booking.cancelled'),
        ...Array(3).fill('booking.created'),
      ]);

      const again = await t().request('POST', `/booking-series/${series.series_id}/cancel`, {
        body: { from: '2026-11-10T14:00:00Z' },
      });
      expect(again.statusCode).toBe(200);
      expect(again.json()).toEqual(after);
      expect((await eventsFor(t(), later)).filter((type) => type === 'booking.cancelled')).toHaveLength(3);

      const free = await book(t(), [room], fourth.start_time, fourth.end_time);
      expect(free.statusCode, free.body).toBe(201);
      expect(free.json().series_id).toBeNull();
      expect(
        (await book(t(), [room], series.bookings[2]!.start_time, series.bookings[2]!.end_time)).statusCode,
      ).toBe(409);

      const all = await t().request('POST', `/booking-series/${series.series_id}/cancel`);
      expect(all.statusCode, all.body).toBe(200);
      expect(all.json<SeriesBody>().bookings.map((b) => b.status)).toEqual(Array(6).fill('cancelled'));
      const read = await t().request('GET', `/booking-series/${series.series_id}`);
      expect(read.json()).toEqual(all.json());
    });

    it('a series racing single bookings: exactly one side gets each time, never both', async () => {
      for (let round = 0; round < 4; round++) {
        const room = await resourceIn(t(), 'UTC', `Race ${round}`);
        const [series, ...singles] = await Promise.all([
          bookSeries(t(), [room], '2026-10-05T09:00:00Z', '2026-10-05T10:00:00Z', {
            frequency: 'daily',
            count: 8,
          }),
          book(t(), [room], '2026-10-11T09:30:00Z', '2026-10-11T10:30:00Z'),
          book(t(), [room], '2026-10-12T09:30:00Z', '2026-10-12T10:30:00Z'),
        ]);
        const won = singles.filter((single) => single.statusCode === 201).length;
        if (series.statusCode === 201) {
          expect(won).toBe(0);
          expect(singles.map((single) => single.json().code)).toEqual([
            'SLOT_UNAVAILABLE',
            'SLOT_UNAVAILABLE',
          ]);
        } else {
          expect(series.statusCode, series.body).toBe(409);
          expect(won).toBeGreaterThan(0);
          const refused = series.json<{ occurrences: { start_time: string }[] }>().occurrences;
          expect(refused.length).toBeGreaterThan(0);
        }
        const stored = await bookingsOf(t(), room);
        expect(stored).toHaveLength(series.statusCode === 201 ? 8 : won);
      }
    });

    it('an Idempotency-Key replays the series instead of booking it twice', async () => {
      const room = await resourceIn(t(), 'UTC');
      const request = () =>
        t().request('POST', '/bookings', {
          headers: { 'idempotency-key': `series-${room}` },
          body: {
            resource_ids: [room],
            start_time: '2026-10-04T09:00:00Z',
            end_time: '2026-10-04T10:00:00Z',
            title: 'Standup',
            recurrence: { frequency: 'daily', count: 3 },
          },
        });
      const first = await created(await request());
      const again = await request();
      expect(again.statusCode, again.body).toBe(201);
      expect(again.json()).toEqual(first);
      expect(await bookingsOf(t(), room)).toHaveLength(3);
    });

    it('an ICS feed shows a series as one recurring event with its cancelled and moved occurrences', async () => {
      const zone = 'America/New_York';
      const room = await resourceIn(t(), zone);
      const series = await created(
        await bookSeries(
          t(),
          [room],
          '2026-10-20T13:00:00Z',
          '2026-10-20T14:00:00Z',
          { frequency: 'weekly', count: 6 },
          { description: 'Weekly; bring notes' },
        ),
      );
      const [, second, , , fifth] = series.bookings;
      expect((await t().request('POST', `/bookings/${second!.booking_id}/cancel`)).statusCode).toBe(200);
      const moved = await t().request('PATCH', `/bookings/${fifth!.booking_id}`, {
        body: { start_time: '2026-11-18T15:00:00Z', end_time: '2026-11-18T16:30:00Z' },
      });
      expect(moved.statusCode, moved.body).toBe(200);
      const single = await book(t(), [room], '2026-10-21T13:00:00Z', '2026-10-21T14:00:00Z');
      expect(single.statusCode).toBe(201);

      const feed = await t().request('POST', `/resources/${room}/feeds`);
      expect(feed.statusCode, feed.body).toBe(201);
      const res = await t().request('GET', new URL(feed.json<{ url: string }>().url, 'http://x').pathname, {
        key: null,
      });
      expect(res.statusCode, res.body).toBe(200);
      const ics = res.body;
      const uid = `${series.series_id}@sched`;

      const calendar = new ICAL.Component(ICAL.parse(ics));
      const vevents = calendar.getAllSubcomponents('vevent');
      const ofSeries = vevents.filter((v) => v.getFirstPropertyValue('uid') === uid);
      expect(vevents).toHaveLength(1 + ofSeries.length);
      const master = ofSeries.find((v) => !v.hasProperty('recurrence-id'))!;
      expect(ics).toContain('\r\nRRULE:FREQ=WEEKLY;COUNT=6;WKST=MO\r\n');
      expect(master.getFirstProperty('dtstart')!.getParameter('tzid')).toBe(zone);
      expect(ofSeries).toHaveLength(2);
      expect(ics).toMatch(/\r\nEXDATE;TZID=America\/New_York:20261027T090000\r\n/);
      expect(ics).toMatch(/\r\nRECURRENCE-ID;TZID=America\/New_York:20261117T090000\r\n/);

      // What each reader makes of it: the live occurrences exactly.
      const live = (await t().request('GET', `/booking-series/${series.series_id}`))
        .json<SeriesBody>()
        .bookings.filter((b) => b.status === 'confirmed')
        .map((b) => [b.start_time, b.end_time])
        .sort();
      expect(live).toHaveLength(5);
      expect(live).toContainEqual(['2026-11-18T15:00:00Z', '2026-11-18T16:30:00Z']);

      const split = splitCalendar(ics);
      if (!split.ok) throw new Error(split.error);
      const part = split.parts.find((p) => p.uid === uid)!;
      const expanded = expandObject(
        part.ics,
        { start: Date.parse('2026-10-01T00:00:00Z'), end: Date.parse('2027-01-01T00:00:00Z') },
        { floatingZone: 'UTC' },
      );
      if (!expanded.ok) throw new Error(expanded.error);
      const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
      expect(
        expanded.occurrences
          .filter((o) => o.status !== 'cancelled')
          .map((o) => [iso(o.startsAt), iso(o.endsAt)])
          .sort(),
      ).toEqual(live);
      expect(expanded.summary.title).toBe('Standup');

      for (const vtimezone of calendar.getAllSubcomponents('vtimezone'))
        ICAL.TimezoneService.register(vtimezone);
      try {
        const event = new ICAL.Event(master, {
          exceptions: ofSeries.filter((v) => v.hasProperty('recurrence-id')).map((v) => new ICAL.Event(v)),
        });
        const fromIcalJs: string[][] = [];
        const iterator = event.iterator();
        for (let next = iterator.next(); next; next = iterator.next()) {
          const details = event.getOccurrenceDetails(next);
          fromIcalJs.push([
            iso(details.startDate.toJSDate().getTime()),
            iso(details.endDate.toJSDate().getTime()),
          ]);
        }
        expect(fromIcalJs.sort()).toEqual(live);
      } finally {
        ICAL.TimezoneService.remove(zone);
      }
    });

    it('another organization’s series is a 404; so is an unknown one', async () => {
      const room = await resourceIn(t(), 'UTC');
      const series = await created(
        await bookSeries(t(), [room], '2026-10-03T09:00:00Z', '2026-10-03T10:00:00Z', {
          frequency: 'daily',
          count: 2,
        }),
      );
      const other = await t().keyFor('globex', ['admin']);
      const read = await t().request('GET', `/booking-series/${series.series_id}`, { key: other });
      expect(read.statusCode).toBe(404);
      expect(read.json().code).toBe('SERIES_NOT_FOUND');
      const cancel = await t().request('POST', `/booking-series/${series.series_id}/cancel`, {
        key: other,
        body: {},
      });
      expect(cancel.statusCode).toBe(404);
      expect(cancel.json().code).toBe('SERIES_NOT_FOUND');
      expect(
        (await t().request('GET', `/booking-series/${series.series_id}`)).json().bookings[0].status,
      ).toBe('confirmed');
      const unknown = await t().request('GET', '/booking-series/00000000-0000-4000-8000-000000000000');
      expect(unknown.statusCode).toBe(404);
      expect(fieldsOf(await t().request('GET', '/booking-series/not-a-uuid'))).toEqual(['series_id']);
      const read_only = await t().keyFor('acme', ['read']);
      const refused = await t().request('POST', `/booking-series/${series.series_id}/cancel`, {
        key: read_only,
      });
      expect(refused.statusCode).toBe(403);
      expect(
        fieldsOf(
          await t().request('POST', `/booking-series/${series.series_id}/cancel`, {
            body: { from: 'tomorrow' },
          }),
        ),
      ).toEqual(['from']);
    });
  },
  NOW,
);

// A second connection holding an uncommitted booking needs a server database: the embedded one has a
// single connection, so this case runs on PostgreSQL only (and in CI, where PostgreSQL is required).
const postgres = backends.find((backend) => backend.name === 'postgres')!;
describe.skipIf(postgres.skipReason)(
  `a series racing a booking on postgres${postgres.skipReason ? ` — SKIPPED: ${postgres.skipReason}` : ''}`,
  () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp(postgres, NOW);
    });
    afterAll(async () => t?.close());

    it('the exclusion constraint refuses an occurrence taken after the checks; the answer names it', async () => {
      const room = await resourceIn(t, 'UTC');
      const db = t.database.db;
      let series: Awaited<ReturnType<TestApp['request']>> | undefined;
      let pending: Promise<unknown> | undefined;
      await db.transaction().execute(async (trx) => {
        const bookingId = randomUUID();
        const at = new Date(t.clock.now);
        await trx
          .insertInto('bookings')
          .values({
            booking_id: bookingId,
            organization_id: t.organizationId,
            status: 'confirmed',
            resource_ids: [room],
            start_time: '2026-10-09T09:30:00Z',
            end_time: '2026-10-09T10:30:00Z',
            title: 'Taken meanwhile',
            attendees: '[]',
            metadata: '{}',
            created_at: at,
            updated_at: at,
          })
          .execute();
        await trx
          .insertInto('booking_resources')
          .values({
            booking_id: bookingId,
            resource_id: room,
            organization_id: t.organizationId,
            during: '[2026-10-09T09:30:00Z,2026-10-09T10:30:00Z)',
            status: 'confirmed',
          })
          .execute();
        // The series' checks cannot see this booking yet; its insert waits on the uncommitted row.
        pending = bookSeries(t, [room], '2026-10-06T09:00:00Z', '2026-10-06T10:00:00Z', {
          frequency: 'daily',
          count: 5,
        }).then((response) => (series = response));
        for (let i = 0; ; i++) {
          const waiting = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`.execute(db);
          if (waiting.rows[0]!.n > 0 || series !== undefined) break;
          if (i > 500) throw new Error('the series never reached its insert');
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        expect(series).toBeUndefined();
      });
      await pending;
      expect(series!.statusCode, series!.body).toBe(409);
      expect(
        series!.json<{ occurrences: { start_time: string }[] }>().occurrences.map((o) => o.start_time),
      ).toEqual(['2026-10-09T09:00:00Z']);
      expect((await bookingsOf(t, room)).map((b) => b.start_time)).toEqual(['2026-10-09T09:30:00Z']);
    });
  },
);
