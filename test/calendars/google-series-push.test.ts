import { googleSettings } from '../emulators/environment.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GoogleCalendarProvider } from '../../src/calendar/providers/google/google-provider.js';
import { expandObject } from '../../src/ical/expand-object.js';
import { startGoogleEmulator, type GoogleEmulator } from '../emulators/google/emulator.js';
import { backends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';
import { freePort, startTestApp, type TestApp } from '../support/test-app.js';

const pglite = backends.find((backend) => backend.name === 'pglite');
if (!pglite) throw new Error('no PGlite backend');

type SeriesBooking = { booking_id: string; start_time: string; end_time: string };
type SeriesBody = { series_id: string; bookings: SeriesBooking[] };

const WINDOW = { start: Date.parse('2026-05-01T00:00:00Z'), end: Date.parse('2027-01-01T00:00:00Z') };
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

describe('a recurring booking pushed to Google Calendar (emulator)', () => {
  let emulator: GoogleEmulator;
  let t: TestApp;
  let counter = 0;

  beforeAll(async () => {
    emulator = await startGoogleEmulator();
    t = await startTestApp(pglite, '2026-05-18T06:00:00Z', {
      google: googleSettings(emulator),
      listenPort: await freePort(),
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await emulator?.stop();
  });

  async function connected() {
    const resourceId = await createOpenResource(t, {
      name: `Consultant ${++counter}`,
      kind: 'person',
      time_zone: 'Europe/Berlin',
    });
    const calendar = await emulator.control.createCalendar({ summary: `Series ${counter}` });
    const tokens = await emulator.control.mintTokens();
    const response = await t.request('POST', '/calendars/google/connect', {
      body: {
        resource_id: resourceId,
        calendar_id: calendar.id,
        oauth_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        expires_at: new Date(Date.now() + tokens.expires_in * 1000).toISOString(),
        sync: { frequency_minutes: 0, conflict_policy: 'sched_wins' },
      },
    });
    expect(response.statusCode, response.body).toBe(201);
    const provider = new GoogleCalendarProvider({
      http: t.http,
      apiUrl: emulator.apiUrl,
      calendarId: calendar.id,
      tokens: { get: () => Promise.resolve(tokens.access_token) },
    });
    return {
      resourceId,
      calendarId: calendar.id,
      connectionId: response.json().connection_id as string,
      provider,
    };
  }

  async function sync(connectionId: string) {
    const response = await t.request('POST', `/calendars/google/${connectionId}/sync`);
    expect(response.statusCode, response.body).toBe(200);
    return response.json().stats as Record<string, number>;
  }

  /** events.list as Google answers it without singleEvents: masters and single events, not instances. */
  async function listed(calendarId: string, accessToken: string) {
    const url = `${emulator.apiUrl}/calendars/${encodeURIComponent(calendarId)}/events?showDeleted=false`;
    const answer = await fetch(url, { headers: { authorization: `Bearer ${accessToken}` } });
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as {
      items: { id: string; recurrence?: string[]; recurringEventId?: string; status?: string }[];
    };
    return body.items.filter((item) => item.recurringEventId === undefined && item.status !== 'cancelled');
  }

  async function readBack(provider: GoogleCalendarProvider) {
    const objects = (await provider.listChanges(null, new Map())).changed;
    return objects.map((object) => {
      const expanded = expandObject(object.ics, WINDOW, { floatingZone: 'UTC' });
      if (!expanded.ok) throw new Error(expanded.error);
      const live = expanded.occurrences.filter((o) => o.status !== 'cancelled');
      return { object, times: live.map((o) => [iso(o.startsAt), iso(o.endsAt)]) };
    });
  }

  it('a weekly series of 5 is one recurring event; a cancelled occurrence is an EXDATE, a moved one an exception', async () => {
    const { resourceId, calendarId, connectionId, provider } = await connected();
    const created = await t.request('POST', '/bookings', {
      body: {
        resource_ids: [resourceId],
        start_time: '2026-10-14T07:00:00Z',
        end_time: '2026-10-14T08:00:00Z',
        title: 'Weekly review',
        recurrence: { frequency: 'weekly', count: 5 },
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    const series = created.json<SeriesBody>();
    expect((await sync(connectionId)).pushed).toBe(1);

    const token = await emulator.control.mintTokens();
    const masters = await listed(calendarId, token.access_token);
    expect(masters).toHaveLength(1);
    expect(masters[0]!.recurrence).toEqual(['RRULE:FREQ=WEEKLY;COUNT=5;WKST=MO']);
    let found = await readBack(provider);
    expect(found).toHaveLength(1);
    expect(found[0]!.object.ics).toContain(`UID:${series.series_id}@sched`);
    expect(found[0]!.times).toEqual(series.bookings.map((b) => [b.start_time, b.end_time]));
    expect((await sync(connectionId)).pushed).toBe(0);

    const third = series.bookings[2]!;
    expect((await t.request('POST', `/bookings/${third.booking_id}/cancel`, { body: {} })).statusCode).toBe(
      200,
    );
    const second = series.bookings[1]!;
    const moved = await t.request('PATCH', `/bookings/${second.booking_id}`, {
      body: { start_time: '2026-10-22T12:00:00Z', end_time: '2026-10-22T13:00:00Z' },
    });
    expect(moved.statusCode, moved.body).toBe(200);
    expect((await sync(connectionId)).pushed).toBe(1);

    const after = await listed(calendarId, token.access_token);
    expect(after).toHaveLength(1);
    expect(after[0]!.recurrence).toEqual([
      'RRULE:FREQ=WEEKLY;COUNT=5;WKST=MO',
      'EXDATE;TZID=Europe/Berlin:20261028T090000',
    ]);
    found = await readBack(provider);
    expect(found).toHaveLength(1);
    const expected = series.bookings
      .filter((b) => b !== third)
      .map((b) =>
        b === second ? ['2026-10-22T12:00:00Z', '2026-10-22T13:00:00Z'] : [b.start_time, b.end_time],
      )
      .sort((a, b) => Date.parse(a[0]!) - Date.parse(b[0]!));
    expect(found[0]!.times).toEqual(expected);

    // Pulled back, the series is Sched's own: it blocks nothing.
    await sync(connectionId);
    const stored = await t.database.db
      .selectFrom('calendar_occurrences')
      .select('blocks')
      .where('connection_id', '=', connectionId)
      .execute();
    expect(stored).toHaveLength(4);
    expect(stored.every((row) => !row.blocks)).toBe(true);

    // The whole series cancelled: the recurring event goes.
    const cancelled = await t.request('POST', `/booking-series/${series.series_id}/cancel`);
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect((await sync(connectionId)).pushed).toBe(1);
    expect(await listed(calendarId, token.access_token)).toHaveLength(0);
  });
});
