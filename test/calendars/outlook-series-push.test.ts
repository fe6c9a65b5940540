import { graphSettings } from '../emulators/environment.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGraphEmulator, type GraphEmulator } from '../emulators/graph/graph-emulator.js';
import { graphCaller } from '../emulators/graph/graph-test-client.js';
import { backends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';
import { consent as consentAt } from '../support/oauth-consent.js';
import { freePort, startTestApp, type TestApp } from '../support/test-app.js';

const pglite = backends.find((backend) => backend.name === 'pglite');
if (!pglite) throw new Error('no PGlite backend');

// Graph's listing covers a window around the real present: the series starts a week from now.
const DAY = Math.floor(Date.now() / 86_400_000 + 7) * 86_400_000;
const at = (hours: number) => new Date(DAY + hours * 3_600_000).toISOString().replace('.000Z', 'Z');
const iso = (text: string) =>
  new Date(Date.parse(text.endsWith('Z') ? text : `${text}Z`)).toISOString().replace('.000Z', 'Z');

type SeriesBooking = { booking_id: string; start_time: string; end_time: string };
type SeriesBody = { series_id: string; bookings: SeriesBooking[] };
type GraphItem = {
  id: string;
  type: string;
  start: { dateTime: string; timeZone: string };
  end: { dateTime: string; timeZone: string };
  recurrence: { pattern: Record<string, unknown>; range: Record<string, unknown> } | null;
};

describe('a recurring booking pushed to Outlook (Graph emulator)', () => {
  let emulator: GraphEmulator;
  let t: TestApp;
  const graph = graphCaller(() => emulator);

  beforeAll(async () => {
    emulator = await startGraphEmulator();
    t = await startTestApp(pglite, new Date().toISOString(), {
      outlook: graphSettings(emulator),
      listenPort: await freePort(),
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await emulator?.stop();
  });

  async function connect(resourceId: string, calendarId: string) {
    const started = await t.request('POST', '/calendars/outlook/connect', {
      body: {
        resource_id: resourceId,
        calendar_id: calendarId,
        sync: { frequency_minutes: 0, conflict_policy: 'sched_wins' },
      },
    });
    expect(started.statusCode, started.body).toBe(200);
    const { authorization_url, connection_id } = started.json();
    const callback = await consentAt(t, 'outlook', authorization_url as string);
    expect(callback.json()).toMatchObject({ message: 'Outlook Calendar connected successfully.' });
    return connection_id as string;
  }

  async function sync(connectionId: string) {
    const response = await t.request('POST', `/calendars/outlook/${connectionId}/sync`);
    expect(response.statusCode, response.body).toBe(200);
    return response.json().stats as Record<string, number>;
  }

  async function items(calendarId: string): Promise<GraphItem[]> {
    const listed = await graph('GET', `me/calendars/${calendarId}/events`);
    expect(listed.status).toBe(200);
    return listed.json.value as GraphItem[];
  }

  /** The instances Outlook shows, as UTC start and end. */
  async function shown(calendarId: string): Promise<string[][]> {
    const view = await graph(
      'GET',
      `me/calendars/${calendarId}/calendarView?startDateTime=${at(-24)}&endDateTime=${at(24 * 60)}`,
      undefined,
      { prefer: 'outlook.timezone="UTC"' },
    );
    expect(view.status).toBe(200);
    return (view.json.value as GraphItem[]).map((item) => [iso(item.start.dateTime), iso(item.end.dateTime)]);
  }

  it('a weekly series of 5 is one series master; a cancelled occurrence is deleted, a moved one an exception', async () => {
    const resourceId = await createOpenResource(t, {
      name: 'Room',
      kind: 'room',
      time_zone: 'Europe/Berlin',
    });
    const calendar = emulator.control.createCalendar('Series');
    const connectionId = await connect(resourceId, calendar.id);
    const created = await t.request('POST', '/bookings', {
      body: {
        resource_ids: [resourceId],
        start_time: at(9),
        end_time: at(10),
        title: 'Weekly review',
        recurrence: { frequency: 'weekly', count: 5 },
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    const series = created.json<SeriesBody>();
    expect((await sync(connectionId)).pushed).toBe(1);

    let masters = await items(calendar.id);
    expect(masters).toHaveLength(1);
    expect(masters[0]!.type).toBe('seriesMaster');
    expect(masters[0]!.recurrence?.pattern).toMatchObject({
      type: 'weekly',
      interval: 1,
      firstDayOfWeek: 'monday',
    });
    expect(masters[0]!.recurrence?.range).toMatchObject({
      type: 'numbered',
      numberOfOccurrences: 5,
      recurrenceTimeZone: 'W. Europe Standard Time',
    });
    expect(await shown(calendar.id)).toEqual(series.bookings.map((b) => [b.start_time, b.end_time]));
    expect((await sync(connectionId)).pushed).toBe(0);

    const third = series.bookings[2]!;
    expect((await t.request('POST', `/bookings/${third.booking_id}/cancel`, { body: {} })).statusCode).toBe(
      200,
    );
    const second = series.bookings[1]!;
    const movedTo = [at(24 * 7 + 13), at(24 * 7 + 14)];
    const moved = await t.request('PATCH', `/bookings/${second.booking_id}`, {
      body: { start_time: movedTo[0], end_time: movedTo[1] },
    });
    expect(moved.statusCode, moved.body).toBe(200);
    expect((await sync(connectionId)).pushed).toBe(1);

    masters = await items(calendar.id);
    expect(masters).toHaveLength(1);
    expect(masters[0]!.type).toBe('seriesMaster');
    const expected = series.bookings
      .filter((b) => b !== third)
      .map((b) => (b === second ? movedTo : [b.start_time, b.end_time]));
    expect(await shown(calendar.id)).toEqual(expected);

    // Pulled back, the instances are Sched's own: none blocks the room.
    await sync(connectionId);
    const stored = await t.database.db
      .selectFrom('calendar_occurrences')
      .select('blocks')
      .where('connection_id', '=', connectionId)
      .execute();
    expect(stored).toHaveLength(4);
    expect(stored.every((row) => !row.blocks)).toBe(true);

    const cancelled = await t.request('POST', `/booking-series/${series.series_id}/cancel`);
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect((await sync(connectionId)).pushed).toBe(1);
    expect(await items(calendar.id)).toHaveLength(0);
  });

  it('monthly on the 31st until a date, and daily every other day: Outlook shows exactly the booked occurrences', async () => {
    const resourceId = await createOpenResource(t, {
      name: 'Studio',
      kind: 'room',
      time_zone: 'America/New_York',
    });
    const calendar = emulator.control.createCalendar('Patterns');
    const connectionId = await connect(resourceId, calendar.id);
    // The next 31st at least a week away, 10:00 in New York.
    let month = new Date(DAY);
    for (;;) {
      const candidate = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth(), 31, 15));
      if (candidate.getUTCDate() === 31 && candidate.getTime() > DAY) {
        month = candidate;
        break;
      }
      month = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 1));
    }
    const start = month.getTime();
    const monthly = await t.request('POST', '/bookings', {
      body: {
        resource_ids: [resourceId],
        start_time: new Date(start).toISOString(),
        end_time: new Date(start + 3_600_000).toISOString(),
        title: 'Month end',
        recurrence: { frequency: 'monthly', until: new Date(start + 200 * 86_400_000).toISOString() },
      },
    });
    expect(monthly.statusCode, monthly.body).toBe(201);
    const daily = await t.request('POST', '/bookings', {
      body: {
        resource_ids: [resourceId],
        start_time: at(14),
        end_time: at(15),
        title: 'Check-in',
        recurrence: { frequency: 'daily', interval: 2, count: 4 },
      },
    });
    expect(daily.statusCode, daily.body).toBe(201);
    const series = [monthly.json<SeriesBody>(), daily.json<SeriesBody>()];
    expect((await sync(connectionId)).pushed).toBe(2);

    const masters = await items(calendar.id);
    expect(masters).toHaveLength(2);
    const byType = new Map(masters.map((m) => [m.recurrence?.pattern.type, m]));
    expect(byType.get('absoluteMonthly')?.recurrence).toMatchObject({
      pattern: { dayOfMonth: 31, interval: 1 },
      range: { type: 'endDate', recurrenceTimeZone: 'Eastern Standard Time' },
    });
    expect(byType.get('daily')?.recurrence).toMatchObject({
      pattern: { interval: 2 },
      range: { type: 'numbered', numberOfOccurrences: 4 },
    });
    const view = await graph(
      'GET',
      `me/calendars/${calendar.id}/calendarView?startDateTime=${at(-24)}&endDateTime=${new Date(start + 400 * 86_400_000).toISOString()}`,
      undefined,
      { prefer: 'outlook.timezone="UTC"' },
    );
    const shownTimes = (view.json.value as GraphItem[]).map((item) => iso(item.start.dateTime)).sort();
    const booked = series.flatMap((one) => one.bookings.map((b) => b.start_time)).sort();
    // Months without a 31st are skipped on both sides.
    expect(series[0]!.bookings.every((b) => b.start_time.slice(8, 10) === '31')).toBe(true);
    expect(shownTimes).toEqual(booked);
  });
});
