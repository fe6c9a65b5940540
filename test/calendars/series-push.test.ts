import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { CalDavProvider } from '../../src/calendar/providers/caldav/caldav-provider.js';
import { expandObject } from '../../src/ical/expand-object.js';
import { backends } from '../support/backends.js';
import {
  CALDAV_SERVER_KINDS,
  calDavServerSkipReason,
  startCalDavServer,
  type CalDavServer,
} from '../support/caldav-servers.js';
import { createOpenResource } from '../support/resources.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const pglite = backends.find((backend) => backend.name === 'pglite');
if (!pglite) throw new Error('no PGlite backend');

type SeriesBooking = { booking_id: string; start_time: string; end_time: string; status: string };
type SeriesBody = { series_id: string; bookings: SeriesBooking[] };

const WINDOW = { start: Date.parse('2026-05-01T00:00:00Z'), end: Date.parse('2027-01-01T00:00:00Z') };
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

for (const kind of CALDAV_SERVER_KINDS) {
  const skip = calDavServerSkipReason(kind);
  describe.skipIf(skip)(`a series pushed to ${kind}${skip ? ` — SKIPPED: ${skip}` : ''}`, () => {
    let server: CalDavServer;
    let t: TestApp;
    let counter = 0;

    beforeAll(async () => {
      server = await startCalDavServer(kind);
      t = await startTestApp(pglite, '2026-05-18T06:00:00Z');
    }, 120_000);
    afterAll(async () => {
      await t?.close();
      await server?.stop();
    });

    async function connectedResource(direction: 'push' | 'two_way') {
      counter++;
      const calendarUrl = await server.newCalendar(`series-${counter}`);
      const resourceId = await createOpenResource(t, {
        name: `Room ${counter}`,
        kind: 'room',
        time_zone: 'Europe/Berlin',
      });
      const connected = await t.request('POST', '/calendars/caldav/connect', {
        body: {
          resource_id: resourceId,
          url: server.rootUrl,
          username: server.username,
          password: server.password,
          calendar_id: calendarUrl,
          sync: { conflict_policy: 'sched_wins', frequency_minutes: 0, direction },
        },
      });
      expect(connected.statusCode, connected.body).toBe(201);
      const provider = new CalDavProvider({
        http: t.http,
        collectionUrl: calendarUrl,
        username: server.username,
        password: server.password,
      });
      return { resourceId, connectionId: connected.json().connection_id as string, provider };
    }

    async function sync(connectionId: string) {
      const response = await t.request('POST', `/calendars/caldav/${connectionId}/sync`);
      expect(response.statusCode, response.body).toBe(200);
      return response.json().stats as Record<string, number>;
    }

    async function weeklySeries(resourceId: string): Promise<SeriesBody> {
      // Across the end of summer time in Berlin (2026-10-25): every occurrence at 09:00 local.
      const response = await t.request('POST', '/bookings', {
        body: {
          resource_ids: [resourceId],
          start_time: '2026-10-14T07:00:00Z',
          end_time: '2026-10-14T08:00:00Z',
          title: 'Weekly review',
          recurrence: { frequency: 'weekly', count: 5 },
        },
      });
      expect(response.statusCode, response.body).toBe(201);
      return response.json<SeriesBody>();
    }

    /** Every object in the calendar, and the occurrences each one expands to. */
    async function readBack(provider: CalDavProvider) {
      const objects = (await provider.listChanges(null, new Map())).changed;
      return objects.map((object) => {
        const expanded = expandObject(object.ics, WINDOW, { floatingZone: 'UTC' });
        if (!expanded.ok) throw new Error(expanded.error);
        const live = expanded.occurrences.filter((o) => o.status !== 'cancelled');
        return { object, starts: live.map((o) => [iso(o.startsAt), iso(o.endsAt)]) };
      });
    }

    const timesOf = (bookings: SeriesBooking[]) => bookings.map((b) => [b.start_time, b.end_time]);

    for (const direction of ['push', 'two_way'] as const) {
      it(`${direction}: a weekly series of 5 is one object with an RRULE; a cancelled occurrence becomes an EXDATE`, async () => {
        const { resourceId, connectionId, provider } = await connectedResource(direction);
        const series = await weeklySeries(resourceId);
        expect(series.bookings).toHaveLength(5);
        expect((await sync(connectionId)).pushed).toBe(1);

        let found = await readBack(provider);
        expect(found).toHaveLength(1);
        const [written] = found;
        expect(written!.object.ics).toMatch(/^RRULE:FREQ=WEEKLY;COUNT=5;WKST=MO\r?$/m);
        expect(written!.object.ics).toMatch(/^DTSTART;TZID=Europe\/Berlin:20261014T090000\r?$/m);
        expect(written!.object.ics).toContain('BEGIN:VTIMEZONE');
        expect(written!.object.ics).toContain(`UID:${series.series_id}@sched`);
        expect(written!.starts).toEqual(timesOf(series.bookings));
        // Both Berlin offsets: the wall time holds across the change.
        expect(series.bookings.map((b) => b.start_time.slice(11, 13))).toEqual([
          '07',
          '07',
          '08',
          '08',
          '08',
        ]);

        // A repeated sync writes nothing more.
        expect((await sync(connectionId)).pushed).toBe(0);

        const third = series.bookings[2]!;
        const cancelled = await t.request('POST', `/bookings/${third.booking_id}/cancel`, { body: {} });
        expect(cancelled.statusCode, cancelled.body).toBe(200);
        expect((await sync(connectionId)).pushed).toBe(1);
        found = await readBack(provider);
        expect(found).toHaveLength(1);
        expect(found[0]!.object.remoteId).toBe(written!.object.remoteId);
        expect(found[0]!.object.ics).toMatch(/^EXDATE;TZID=Europe\/Berlin:20261028T090000\r?$/m);
        expect(found[0]!.starts).toEqual(timesOf(series.bookings.filter((b) => b !== third)));

        // Nothing is left to push for the connection: the occurrences' own links were settled too.
        const pending = await sql<{ n: number }>`
          select count(*)::int as n from booking_calendar_links
          where connection_id = ${connectionId} and push_pending`.execute(t.database.db);
        expect(pending.rows[0]!.n).toBe(0);
      });
    }

    it('a moved occurrence is a RECURRENCE-ID override; our own series never blocks the resource', async () => {
      const { resourceId, connectionId, provider } = await connectedResource('two_way');
      const series = await weeklySeries(resourceId);
      await sync(connectionId);
      const second = series.bookings[1]!;
      const moved = await t.request('PATCH', `/bookings/${second.booking_id}`, {
        body: { start_time: '2026-10-22T12:00:00Z', end_time: '2026-10-22T13:00:00Z' },
      });
      expect(moved.statusCode, moved.body).toBe(200);
      expect((await sync(connectionId)).pushed).toBe(1);
      const found = await readBack(provider);
      expect(found).toHaveLength(1);
      expect(found[0]!.object.ics).toMatch(/^RECURRENCE-ID;TZID=Europe\/Berlin:20261021T090000\r?$/m);
      const expected = timesOf(series.bookings).map((times, index) =>
        index === 1 ? ['2026-10-22T12:00:00Z', '2026-10-22T13:00:00Z'] : times,
      );
      expect(found[0]!.starts).toEqual([...expected].sort((a, b) => Date.parse(a[0]!) - Date.parse(b[0]!)));

      // The first occurrence goes to another room: the master still names its booking, which is no
      // longer this room's, so only the series' UID tells that the object is Sched's own.
      const otherRoom = await createOpenResource(t, {
        name: `Other ${counter}`,
        kind: 'room',
        time_zone: 'Europe/Berlin',
      });
      const first = series.bookings[0]!;
      const away = await t.request('PATCH', `/bookings/${first.booking_id}`, {
        body: { resource_ids: [otherRoom] },
      });
      expect(away.statusCode, away.body).toBe(200);
      expect((await sync(connectionId)).pushed).toBe(1);
      const afterMove = await readBack(provider);
      expect(afterMove).toHaveLength(1);
      expect(afterMove[0]!.object.ics).toContain(`X-SCHED-BOOKING-ID:${first.booking_id}`);
      expect(afterMove[0]!.starts).toHaveLength(4);

      // Pulled back, the series is stored as Sched's own: none of its occurrences blocks the room.
      await sync(connectionId);
      const stored = await sql<{ blocks: boolean }>`
        select o.blocks from calendar_occurrences o where o.connection_id = ${connectionId}`.execute(
        t.database.db,
      );
      expect(stored.rows.length).toBe(4);
      expect(stored.rows.every((row) => !row.blocks)).toBe(true);
    });

    it('the update is conditional: a series changed at the server is written over; one deleted there is made again', async () => {
      const { resourceId, connectionId, provider } = await connectedResource('push');
      const series = await weeklySeries(resourceId);
      await sync(connectionId);
      const [before] = await readBack(provider);
      const url = new URL(before!.object.remoteId, server.rootUrl).toString();
      const renamed = before!.object.ics.replace(/^SUMMARY:Weekly review/m, 'SUMMARY:Renamed elsewhere');
      const put = await server.request('PUT', url, {
        body: renamed,
        headers: { 'content-type': 'text/calendar; charset=utf-8', 'if-match': before!.object.etag! },
      });
      expect(put.status).toBeLessThan(300);

      const fourth = series.bookings[3]!;
      expect(
        (await t.request('POST', `/bookings/${fourth.booking_id}/cancel`, { body: {} })).statusCode,
      ).toBe(200);
      expect((await sync(connectionId)).pushed).toBe(1);
      let found = await readBack(provider);
      expect(found).toHaveLength(1);
      expect(found[0]!.object.ics).not.toContain('Renamed elsewhere');
      expect(found[0]!.object.ics).toMatch(/^EXDATE;TZID=Europe\/Berlin:20261104T090000\r?$/m);
      expect(found[0]!.starts).toEqual(timesOf(series.bookings.filter((b) => b !== fourth)));

      expect((await server.request('DELETE', url)).status).toBeLessThan(300);
      const fifth = series.bookings[4]!;
      expect((await t.request('POST', `/bookings/${fifth.booking_id}/cancel`, { body: {} })).statusCode).toBe(
        200,
      );
      expect((await sync(connectionId)).pushed).toBe(1);
      found = await readBack(provider);
      expect(found).toHaveLength(1);
      expect(found[0]!.starts).toEqual(timesOf(series.bookings.slice(0, 3)));
    });

    it('cancelling the whole series deletes its object', async () => {
      const { resourceId, connectionId, provider } = await connectedResource('push');
      const series = await weeklySeries(resourceId);
      await sync(connectionId);
      expect(await readBack(provider)).toHaveLength(1);
      const cancelled = await t.request('POST', `/booking-series/${series.series_id}/cancel`);
      expect(cancelled.statusCode, cancelled.body).toBe(200);
      expect((await sync(connectionId)).pushed).toBe(1);
      expect(await readBack(provider)).toHaveLength(0);
    });
  });
}
