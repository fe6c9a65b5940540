import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CalDavProvider } from '../../src/calendar/providers/caldav/caldav-provider.js';
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

/** An event as a person would add it in their calendar app. */
function personalEvent(uid: string, start: string, end: string, extra: string[] = []): string {
  return [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Example//Calendar App//EN',
    'BEGIN:VEVENT',
    `UID:${uid}`,
    'DTSTAMP:20260501T000000Z',
    `DTSTART:${start}`,
    `DTEND:${end}`,
    'SUMMARY:Dentist',
    ...extra,
    'END:VEVENT',
    'END:VCALENDAR',
    '',
  ].join('\r\n');
}

for (const kind of CALDAV_SERVER_KINDS) {
  const skip = calDavServerSkipReason(kind);
  describe.skipIf(skip)(`two-way sync with ${kind}${skip ? ` — SKIPPED: ${skip}` : ''}`, () => {
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

    /** A new resource connected to a new calendar of its own, with the given policy. */
    async function connectedResource(policy: string, extraSync: Record<string, unknown> = {}) {
      counter++;
      const calendarUrl = await server.newCalendar(`sched-${counter}`);
      const resourceId = await createOpenResource(t, {
        name: `Dr ${counter}`,
        kind: 'person',
        time_zone: 'Europe/Berlin',
      });
      const connected = await t.request('POST', '/calendars/caldav/connect', {
        body: {
          resource_id: resourceId,
          url: server.rootUrl,
          username: server.username,
          password: server.password,
          calendar_id: calendarUrl,
          sync: { conflict_policy: policy, frequency_minutes: 0, ...extraSync },
        },
      });
      expect(connected.statusCode, connected.body).toBe(201);
      const connection = connected.json();
      const provider = new CalDavProvider({
        http: t.http,
        collectionUrl: calendarUrl,
        username: server.username,
        password: server.password,
      });
      return {
        resourceId,
        connectionId: connection.connection_id as string,
        calendarUrl,
        provider,
        connection,
      };
    }

    async function sync(connectionId: string) {
      const response = await t.request('POST', `/calendars/caldav/${connectionId}/sync`);
      expect(response.statusCode, response.body).toBe(200);
      return response.json().stats as Record<string, number>;
    }

    async function book(resourceId: string, start: string, end: string) {
      const response = await t.request('POST', '/bookings', {
        body: { resource_ids: [resourceId], start_time: start, end_time: end, title: 'Check-up' },
      });
      expect(response.statusCode, response.body).toBe(201);
      return response.json().booking_id as string;
    }

    async function serverObjects(provider: CalDavProvider) {
      return (await provider.listChanges(null, new Map())).changed;
    }

    async function bookingObject(provider: CalDavProvider, bookingId: string) {
      const found = (await serverObjects(provider)).filter((object) => object.ics.includes(bookingId));
      expect(found).toHaveLength(1);
      return found[0]!;
    }

    /** Changes the booking's event at the server, as a person dragging it in their calendar would. */
    async function moveAtServer(provider: CalDavProvider, bookingId: string, start: string, end: string) {
      const object = await bookingObject(provider, bookingId);
      const moved = object.ics
        .replace(/^DTSTART[^\r\n]*/m, `DTSTART:${start}`)
        .replace(/^DTEND[^\r\n]*/m, `DTEND:${end}`)
        .replace(/^SEQUENCE:(\d+)/m, (_line, n: string) => `SEQUENCE:${Number(n) + 1}`);
      const url = new URL(object.remoteId, server.rootUrl).toString();
      const put = await server.request('PUT', url, {
        body: moved,
        headers: {
          'content-type': 'text/calendar; charset=utf-8',
          ...(object.etag ? { 'if-match': object.etag } : {}),
        },
      });
      expect(put.status).toBeLessThan(300);
    }

    async function deleteAtServer(provider: CalDavProvider, bookingId: string) {
      const object = await bookingObject(provider, bookingId);
      const response = await server.request('DELETE', new URL(object.remoteId, server.rootUrl).toString());
      expect(response.status).toBeLessThan(300);
    }

    async function getBooking(bookingId: string) {
      return (await t.request('GET', `/bookings/${bookingId}`)).json();
    }

    it('connects by discovery from the server root and names the calendar by its collection URL', async () => {
      const { connection, calendarUrl } = await connectedResource('sched_wins');
      expect(connection).toMatchObject({ provider: 'caldav', status: 'active', calendar_id: calendarUrl });
      const listed = await t.request('GET', '/calendars', { query: { resource_id: connection.resource_id } });
      expect(listed.json().calendars.map((c: { connection_id: string }) => c.connection_id)).toEqual([
        connection.connection_id,
      ]);
      const stored = await t.database.db
        .selectFrom('calendar_connections')
        .select('credentials_sealed')
        .where('connection_id', '=', connection.connection_id)
        .executeTakeFirstOrThrow();
      expect(stored.credentials_sealed).not.toContain(server.password);
    });

    it('a wrong password is refused at connect with a PROVIDER_AUTH_FAILED problem', async () => {
      const resource = await t.request('POST', '/resources', {
        body: { name: 'Nobody', kind: 'person', time_zone: 'UTC' },
      });
      const response = await t.request('POST', '/calendars/caldav/connect', {
        body: {
          resource_id: resource.json().resource_id,
          url: server.calendarUrl,
          username: server.username,
          password: 'not-the-password',
        },
      });
      // Xandikos has no authentication at all, so any password is accepted there.
      if (kind === 'xandikos') expect(response.statusCode).toBe(201);
      else expect(response.json()).toMatchObject({ status: 502, code: 'PROVIDER_AUTH_FAILED' });
    });

    it('a booking reaches the server once, and a repeated sync writes nothing more', async () => {
      const { resourceId, connectionId, provider } = await connectedResource('sched_wins');
      const bookingId = await book(resourceId, '2026-05-20T08:00:00Z', '2026-05-20T09:00:00Z');
      const first = await sync(connectionId);
      expect(first.pushed).toBe(1);
      const object = await bookingObject(provider, bookingId);
      expect(object.ics).toMatch(/DTSTART:20260520T080000Z/);
      expect(object.ics).toContain(`UID:${bookingId}@sched`);
      const second = await sync(connectionId);
      expect(second).toMatchObject({ pushed: 0, conflicts: 0 });
      expect(await serverObjects(provider)).toHaveLength(1);
      expect((await getBooking(bookingId)).start_time).toBe('2026-05-20T08:00:00Z');
    });

    it('an event added at the server blocks availability and bookings; a transparent one does not', async () => {
      const { resourceId, connectionId, calendarUrl } = await connectedResource('sched_wins');
      const put = (name: string, body: string) =>
        server.request('PUT', `${calendarUrl}${name}.ics`, {
          body,
          headers: { 'content-type': 'text/calendar; charset=utf-8', 'if-none-match': '*' },
        });
      expect(
        (await put('dentist', personalEvent('dentist-1', '20260521T100000Z', '20260521T110000Z'))).status,
      ).toBe(201);
      expect(
        (
          await put(
            'free',
            personalEvent('free-1', '20260521T120000Z', '20260521T130000Z', ['TRANSP:TRANSPARENT']),
          )
        ).status,
      ).toBe(201);
      const stats = await sync(connectionId);
      expect(stats.created).toBe(2);

      const slots = await t.request('GET', '/availability', {
        query: {
          resource_ids: resourceId,
          start: '2026-05-21T09:00:00Z',
          end: '2026-05-21T14:00:00Z',
          duration_minutes: '60',
        },
      });
      const starts = slots.json().slots.map((slot: { start_time: string }) => slot.start_time);
      expect(starts).toEqual([
        '2026-05-21T09:00:00Z',
        '2026-05-21T11:00:00Z',
        '2026-05-21T12:00:00Z',
        '2026-05-21T13:00:00Z',
      ]);
      const refused = await t.request('POST', '/bookings', {
        body: {
          resource_ids: [resourceId],
          start_time: '2026-05-21T10:30:00Z',
          end_time: '2026-05-21T11:30:00Z',
          title: 'Clash',
        },
      });
      expect(refused.statusCode).toBe(409);
      expect(refused.json().conflicts).toEqual([
        expect.objectContaining({ resource_id: resourceId, kind: 'calendar_event' }),
      ]);
      const freebusy = await t.request('POST', '/freebusy', {
        body: { resource_ids: [resourceId], start: '2026-05-21T00:00:00Z', end: '2026-05-22T00:00:00Z' },
      });
      expect(freebusy.json().resources[resourceId].busy).toEqual([
        { start_time: '2026-05-21T10:00:00Z', end_time: '2026-05-21T11:00:00Z', source: 'calendar' },
      ]);
      const events = await t.request('GET', `/calendars/caldav/${connectionId}/events`, {
        query: { start: '2026-05-21T00:00:00Z', end: '2026-05-22T00:00:00Z' },
      });
      expect(events.json().events).toEqual([
        expect.objectContaining({
          start_time: '2026-05-21T10:00:00Z',
          transparency: 'opaque',
          title: 'Dentist',
        }),
        expect.objectContaining({ start_time: '2026-05-21T12:00:00Z', transparency: 'transparent' }),
      ]);
    });

    it('a weekly series added at the server blocks every occurrence, across the DST-free window', async () => {
      const { resourceId, connectionId, calendarUrl } = await connectedResource('sched_wins');
      const series = personalEvent('weekly-1', '20260518T140000Z', '20260518T150000Z', [
        'RRULE:FREQ=WEEKLY;COUNT=4',
      ]);
      const put = await server.request('PUT', `${calendarUrl}weekly.ics`, {
        body: series,
        headers: { 'content-type': 'text/calendar; charset=utf-8' },
      });
      expect(put.status).toBe(201);
      await sync(connectionId);
      const busy = await t.request('POST', '/freebusy', {
        body: { resource_ids: [resourceId], start: '2026-05-18T00:00:00Z', end: '2026-06-30T00:00:00Z' },
      });
      expect(busy.json().resources[resourceId].busy.map((b: { start_time: string }) => b.start_time)).toEqual(
        ['2026-05-18T14:00:00Z', '2026-05-25T14:00:00Z', '2026-06-01T14:00:00Z', '2026-06-08T14:00:00Z'],
      );
    });

    it('provider_wins: moving the event at the server moves the booking; deleting it cancels the booking', async () => {
      const { resourceId, connectionId, provider } = await connectedResource('provider_wins');
      const bookingId = await book(resourceId, '2026-05-22T08:00:00Z', '2026-05-22T09:00:00Z');
      await sync(connectionId);
      await moveAtServer(provider, bookingId, '20260522T130000Z', '20260522T140000Z');
      await sync(connectionId);
      expect(await getBooking(bookingId)).toMatchObject({
        status: 'confirmed',
        start_time: '2026-05-22T13:00:00Z',
        end_time: '2026-05-22T14:00:00Z',
      });
      // The moved event is the booking's own: it does not block the booking's new time twice.
      const slots = await t.request('GET', '/availability', {
        query: {
          resource_ids: resourceId,
          start: '2026-05-22T13:00:00Z',
          end: '2026-05-22T14:00:00Z',
          duration_minutes: '60',
        },
      });
      expect(slots.json().slots).toEqual([]);
      await deleteAtServer(provider, bookingId);
      await sync(connectionId);
      expect((await getBooking(bookingId)).status).toBe('cancelled');
      const audit = await t.request('GET', '/audit-log', { query: { target_id: bookingId } });
      expect(audit.json().entries.map((entry: { actor: string }) => entry.actor)).toContain(
        `sync:caldav:${connectionId}`,
      );
    });

    it('sched_wins: a move at the server is written back over; the booking stays', async () => {
      const { resourceId, connectionId, provider } = await connectedResource('sched_wins');
      const bookingId = await book(resourceId, '2026-05-23T08:00:00Z', '2026-05-23T09:00:00Z');
      await sync(connectionId);
      await moveAtServer(provider, bookingId, '20260523T150000Z', '20260523T160000Z');
      await sync(connectionId);
      expect((await getBooking(bookingId)).start_time).toBe('2026-05-23T08:00:00Z');
      expect((await bookingObject(provider, bookingId)).ics).toMatch(/DTSTART:20260523T080000Z/);
    });

    it('manual: a move at the server opens a conflict, and keeping Sched’s version writes it back', async () => {
      const { resourceId, connectionId, provider } = await connectedResource('manual');
      const bookingId = await book(resourceId, '2026-05-24T08:00:00Z', '2026-05-24T09:00:00Z');
      await sync(connectionId);
      await moveAtServer(provider, bookingId, '20260524T110000Z', '20260524T120000Z');
      const stats = await sync(connectionId);
      expect(stats.conflicts).toBe(1);
      const open = await t.request('GET', '/conflicts', { query: { status: 'open' } });
      const conflict = open.json().conflicts.find((c: { booking_id: string }) => c.booking_id === bookingId);
      expect(conflict).toMatchObject({
        connection_id: connectionId,
        status: 'open',
        sched_version: { start_time: '2026-05-24T08:00:00Z' },
        provider_version: { start_time: '2026-05-24T11:00:00Z' },
      });
      expect((await getBooking(bookingId)).start_time).toBe('2026-05-24T08:00:00Z');
      const resolved = await t.request('POST', `/conflicts/${conflict.conflict_id}/resolve`, {
        body: { keep: 'sched' },
      });
      expect(resolved.json()).toMatchObject({ status: 'resolved', resolution: 'sched' });
      await sync(connectionId);
      expect((await bookingObject(provider, bookingId)).ics).toMatch(/DTSTART:20260524T080000Z/);
      const again = await t.request('POST', `/conflicts/${conflict.conflict_id}/resolve`, {
        body: { keep: 'sched' },
      });
      expect(again.json().code).toBe('CONFLICT_ALREADY_RESOLVED');
    });

    it('manual: keeping the provider’s version moves the booking', async () => {
      const { resourceId, connectionId, provider } = await connectedResource('manual');
      const bookingId = await book(resourceId, '2026-05-25T08:00:00Z', '2026-05-25T09:00:00Z');
      await sync(connectionId);
      await moveAtServer(provider, bookingId, '20260525T100000Z', '20260525T110000Z');
      await sync(connectionId);
      const open = await t.request('GET', '/conflicts', { query: { status: 'open' } });
      const conflict = open.json().conflicts.find((c: { booking_id: string }) => c.booking_id === bookingId);
      await t.request('POST', `/conflicts/${conflict.conflict_id}/resolve`, { body: { keep: 'provider' } });
      expect((await getBooking(bookingId)).start_time).toBe('2026-05-25T10:00:00Z');
      const stats = await sync(connectionId);
      expect(stats.conflicts).toBe(0);
      expect((await bookingObject(provider, bookingId)).ics).toMatch(/DTSTART:20260525T100000Z/);
    });

    it('rescheduling and cancelling in Sched update and then remove the event at the server', async () => {
      const { resourceId, connectionId, provider } = await connectedResource('sched_wins');
      const bookingId = await book(resourceId, '2026-05-26T08:00:00Z', '2026-05-26T09:00:00Z');
      await sync(connectionId);
      const patched = await t.request('PATCH', `/bookings/${bookingId}`, {
        body: { start_time: '2026-05-26T10:00:00Z', end_time: '2026-05-26T11:00:00Z' },
      });
      expect(patched.statusCode).toBe(200);
      expect((await sync(connectionId)).pushed).toBe(1);
      const object = await bookingObject(provider, bookingId);
      expect(object.ics).toMatch(/DTSTART:20260526T100000Z/);
      expect(object.ics).toMatch(/SEQUENCE:2/);
      await t.request('POST', `/bookings/${bookingId}/cancel`, { body: {} });
      expect((await sync(connectionId)).pushed).toBe(1);
      expect(await serverObjects(provider)).toHaveLength(0);
    });

    it('disconnecting erases the connection and its events; the bookings stay', async () => {
      const { resourceId, connectionId } = await connectedResource('sched_wins');
      const bookingId = await book(resourceId, '2026-05-27T08:00:00Z', '2026-05-27T09:00:00Z');
      await sync(connectionId);
      const response = await t.request('DELETE', `/calendars/caldav/${connectionId}`);
      expect(response.json()).toEqual({ message: 'CalDAV Calendar disconnected successfully.' });
      expect((await t.request('GET', `/calendars/caldav/${connectionId}`)).statusCode).toBe(404);
      const left = await t.database.db
        .selectFrom('calendar_events')
        .select('event_id')
        .where('connection_id', '=', connectionId)
        .execute();
      expect(left).toEqual([]);
      expect((await getBooking(bookingId)).status).toBe('confirmed');
    });
  });
}
